//! A deterministic demo catalog that looks like a real general store: the same for the same
//! seed, at any size (the benchmarks use 100,000 and 1,000,000 products; the reference shop
//! seeds a few hundred).
//!
//! Sixteen departments ([`categories`]: `phones`, `laptops`, `tvs`, `audio`, `computers`,
//! `tablets`, `wearables`, `cameras`, `gaming`, `appliances`, `kitchen`, `home`, `outdoor`,
//! `fitness`, `toys`, `garden`) each sell real product types (smartphones, laptops, OLED TVs,
//! headphones, air fryers, building blocks...) from real brands and their product lines
//! (Apple iPhone, Samsung Galaxy, Dell XPS, Lenovo ThinkPad, Sony Bravia, Bose QuietComfort,
//! LEGO Classic...), so the searches shoppers type ("iphone", "samsung tv", "laptop",
//! "air fryer", "lego") find something and the results can be judged. Titles are worded in
//! several ways, with sizes and specs as words: `Samsung Galaxy S24 256GB 5G Smartphone`,
//! `LG 55 inch 4K OLED TV C3`, `Dell XPS 13 Laptop 16GB RAM 512GB SSD`,
//! `Ninja Max XL Air Fryer 5.5 qt`, `LEGO Classic Building Blocks 500 pieces`.
//!
//! Every product has these attributes (searchable and filterable):
//! - `type`: what a shopper calls it, lower case (`smartphone`, `laptop`, `tv`, `air fryer`,
//!   `headphones`, `building blocks`). Titles may be more specific: an OLED TV, a QLED TV and
//!   an LED TV are all `tv` (with `panel` saying which), a Chromebook, an Ultrabook and a
//!   Gaming Laptop are all `laptop`, a DSLR and a mirrorless camera are both `camera`.
//!   [`product_type`] reads it back, [`product_types`] lists them all;
//! - `color` (`black`, `white`, `red`, `blue`, `green`, `grey`, `orange` or `silver`);
//! - where natural, the specs of the title: `screen` (`55 inch`), `storage` (`256GB`),
//!   `memory` (`16GB`), `capacity` (`1.7 l`, `5.5 qt`), `pieces` (`500 pieces`) and a few
//!   more of the same kind, and `material` (`stainless steel`).
//!
//! Descriptions are one or two plain sentences naming the brand, line or model, the specs and
//! the type. Prices are in USD and end in 99 cents, bigger specs cost more; weights are
//! shipping weights, at most 25 kg (the demo ships everything by parcel); about one variant in
//! ten is out of stock. Titles are ASCII letters, digits, spaces and `.,-` only (no quotes,
//! `&`, `+` or `/`).

use std::fmt::Write as _;

use chrono::{DateTime, TimeZone, Utc};

use crate::catalog::{Category, ItemProfile, Product, Variant};
use crate::id::{CategoryId, ProductId, Sku};
use crate::money::{Currency, Money};
use crate::storefront::ImportItem;

/// A product type of a department, and how its products are made up.
#[derive(Debug, Clone, Copy)]
struct Kind {
    /// The noun of titles (`OLED TV`).
    noun: &'static str,
    /// The `type` attribute: what a shopper calls it, lower case (`tv`).
    kind: &'static str,
    /// Brands, each with its product lines (none: the description names a model code).
    makers: &'static [(&'static str, &'static [&'static str])],
    /// Words before the noun (`Wireless`); `""` is none.
    features: &'static [&'static str],
    /// Specs, at most two: the attribute, its values as titles write them, and what titles
    /// write after the value (`16GB` and ` RAM`).
    specs: &'static [Spec],
    /// Attributes every product of the type has (`panel: OLED`).
    extra: &'static [(&'static str, &'static str)],
    /// The `material` attribute's values; none: no such attribute.
    materials: &'static [&'static str],
    /// The `color` attribute's values.
    colors: &'static [&'static str],
    /// The letters of model codes (`HD` in `HD4646`).
    code: &'static str,
    /// Title templates (see [`render`]).
    titles: &'static [&'static str],
    /// Price range, in dollars.
    dollars: (u32, u32),
    /// Shipping weight range, in grams.
    grams: (u32, u32),
    /// The choices of `size` options of the variants.
    sizes: &'static [&'static [&'static str]],
    /// The description's second sentence.
    blurb: &'static str,
}

/// A spec: attribute name, values, what titles write after the value.
type Spec = (&'static str, &'static [&'static str], &'static str);

/// The most specs a product type has.
const MAX_SPECS: usize = 2;

/// Defaults of the optional parts of a [`Kind`].
const BASE: Kind = Kind {
    noun: "",
    kind: "",
    makers: &[],
    features: &[""],
    specs: &[],
    extra: &[],
    materials: &[],
    colors: TECH,
    code: "X",
    titles: LINED,
    dollars: (10, 100),
    grams: (100, 1_000),
    sizes: ONE_SIZE,
    blurb: "",
};

// Title templates: words separated by single spaces; `{b}` brand, `{l}` product line, `{f}`
// feature, `{n}` noun, `{s}` specs, `{c}` color, `{m}` model code. A word whose placeholders
// are all empty (no line, no feature, no specs) is left out, with its punctuation.

/// Brand and line first, specs before or after the noun.
const LINED: &[&str] = &[
    "{b} {l} {s} {f} {n}",
    "{b} {l} {f} {n}, {s}, {c}",
    "{b} {l} {f} {n} {s} in {c}",
];
/// Screens: the size first.
const SCREEN: &[&str] = &[
    "{b} {s} {f} {n} {l}",
    "{b} {l} {s} {f} {n}",
    "{b} {s} Class {l} {f} {n} {m}",
];
/// Specs after the noun, sometimes a model code.
const SPEC_LAST: &[&str] = &[
    "{b} {l} {f} {n} {s}",
    "{b} {l} {s} {f} {n}, {c}",
    "{b} {f} {n} {l} {s} {m}",
];
/// Accessories made for a device (`for iPhone 15`).
const MADE_FOR: &[&str] = &[
    "{b} {l} {f} {n} for {s}",
    "{b} {l} {n} for {s}, {c}",
    "{b} {f} {n} for {s} {m}",
];

/// Colors of devices.
const TECH: &[&str] = &["black", "white", "grey", "silver"];
/// Colors of phones, tablets and watches.
const PHONE: &[&str] = &["black", "white", "blue", "green", "silver"];
/// Colors of screens.
const DARK: &[&str] = &["black", "silver"];
/// Colors of appliances.
const APPLIANCE: &[&str] = &["white", "silver", "black", "grey"];
/// Every color.
const ALL: &[&str] = &[
    "black", "white", "red", "blue", "green", "grey", "orange", "silver",
];
/// Colors of toys and outdoor gear.
const BRIGHT: &[&str] = &["red", "blue", "green", "orange", "black", "white"];

/// One variant.
const ONE_SIZE: &[&[&str]] = &[&["one size"]];
/// Two sizes.
const STANDARD_LARGE: &[&[&str]] = &[&["one size"], &["standard", "large"]];
/// Clothing-like sizes.
const S_M_L: &[&[&str]] = &[&["S", "M", "L"], &["S", "M", "L", "XL"]];
/// Shoe sizes (US).
const SHOES: &[&[&str]] = &[&["8", "9", "10", "11"], &["7", "8", "9", "10", "11", "12"]];
/// Sleeping bags.
const REGULAR_LONG: &[&[&str]] = &[&["regular", "long"]];

#[rustfmt::skip]
const PHONES: &[Kind] = &[
    Kind {
        noun: "Smartphone", kind: "smartphone", code: "SM", dollars: (199, 1_599), grams: (160, 240),
        makers: &[
            ("Apple", &["iPhone 15", "iPhone 15 Pro", "iPhone 16", "iPhone 16 Pro Max", "iPhone SE"]),
            ("Samsung", &["Galaxy S24", "Galaxy S24 Ultra", "Galaxy A35", "Galaxy Z Flip6", "Galaxy Z Fold6"]),
            ("Google", &["Pixel 8a", "Pixel 9", "Pixel 9 Pro", "Pixel 9 Pro XL"]),
            ("Motorola", &["Moto G Power", "Moto G Stylus", "Edge 2024", "Razr"]),
            ("OnePlus", &["12", "12R", "Nord N30"]),
        ],
        features: &["", "Unlocked", "5G"],
        specs: &[("storage", &["128GB", "256GB", "512GB"], "")],
        colors: PHONE,
        blurb: "Unlocked for all major carriers, with a bright display, a fast camera and all-day battery.",
        ..BASE
    },
    Kind {
        noun: "Phone Case", kind: "phone case", code: "PC", dollars: (15, 69), grams: (30, 90),
        makers: &[
            ("OtterBox", &["Defender", "Symmetry", "Commuter"]),
            ("Spigen", &["Tough Armor", "Ultra Hybrid", "Liquid Air"]),
            ("ESR", &["Classic Hybrid", "Cloud Soft"]),
            ("Casetify", &["Impact", "Mirror"]),
            ("Speck", &["Presidio2 Grip", "Gemshell"]),
        ],
        features: &["", "MagSafe", "Slim", "Rugged"],
        specs: &[("fits", &["iPhone 15", "iPhone 16", "iPhone 16 Pro", "Galaxy S24", "Pixel 9"], "")],
        materials: &["silicone", "polycarbonate", "leather", "tpu"],
        colors: ALL, titles: MADE_FOR,
        blurb: "A phone case with raised edges that protect the screen and camera from drops.",
        ..BASE
    },
    Kind {
        noun: "Charger", kind: "charger", code: "CH", dollars: (15, 79), grams: (50, 250),
        makers: &[
            ("Anker", &["Nano", "Prime", "PowerPort III"]),
            ("Apple", &[]),
            ("Samsung", &["Super Fast"]),
            ("Belkin", &["BoostCharge Pro"]),
            ("Ugreen", &["Nexode"]),
        ],
        features: &["USB-C", "Wireless", "Fast", "USB-C Wall"],
        specs: &[("power", &["20W", "30W", "45W", "65W", "100W"], "")],
        colors: &["white", "black"], titles: SPEC_LAST,
        blurb: "A compact phone charger that fast charges phones, tablets and earbuds.",
        ..BASE
    },
    Kind {
        noun: "Screen Protector", kind: "screen protector", code: "SP", dollars: (9, 49), grams: (20, 60),
        makers: &[
            ("ZAGG", &["InvisibleShield Glass Elite", "InvisibleShield Glass XTR3"]),
            ("Spigen", &["GlasTR EZ Fit"]),
            ("Belkin", &["UltraGlass 2", "TemperedGlass"]),
            ("amFilm", &[]),
        ],
        features: &["", "Tempered Glass", "Privacy", "Anti-Glare"],
        specs: &[("fits", &["iPhone 15", "iPhone 16", "iPhone 16 Pro", "Galaxy S24", "Pixel 9"], "")],
        materials: &["tempered glass"],
        colors: &["black"], titles: MADE_FOR,
        blurb: "A tempered glass screen protector that keeps scratches and cracks off the display.",
        ..BASE
    },
    Kind {
        noun: "Power Bank", kind: "power bank", code: "PB", dollars: (19, 129), grams: (180, 600),
        makers: &[
            ("Anker", &["PowerCore", "Prime", "MagGo"]),
            ("Belkin", &["BoostCharge"]),
            ("Mophie", &["Powerstation Plus"]),
            ("INIU", &[]),
        ],
        features: &["", "Portable", "Magnetic", "USB-C"],
        specs: &[("capacity", &["5000mAh", "10000mAh", "20000mAh", "26800mAh"], "")],
        colors: TECH, titles: SPEC_LAST,
        blurb: "A portable charger that tops up a phone two or three times away from a socket.",
        ..BASE
    },
];

#[rustfmt::skip]
const LAPTOPS: &[Kind] = &[
    Kind {
        noun: "Laptop", kind: "laptop", code: "NB", dollars: (399, 2_999), grams: (1_100, 2_500),
        makers: &[
            ("Dell", &["XPS 13", "XPS 15", "Inspiron 15", "Latitude 7440"]),
            ("HP", &["Pavilion 15", "Envy x360", "Spectre x360", "EliteBook 840"]),
            ("Lenovo", &["ThinkPad X1 Carbon", "ThinkPad T14", "IdeaPad Slim 5", "Yoga 7i"]),
            ("Apple", &["MacBook Air 13", "MacBook Air 15", "MacBook Pro 14", "MacBook Pro 16"]),
            ("Asus", &["Zenbook 14", "Vivobook 15", "ProArt P16"]),
            ("Acer", &["Aspire 5", "Swift Go 14", "Aspire Vero"]),
        ],
        features: &["", "", "Touchscreen", "Business"],
        specs: &[("memory", &["8GB", "16GB", "32GB"], " RAM"), ("storage", &["256GB", "512GB", "1TB"], " SSD")],
        colors: TECH,
        titles: &["{b} {l} {f} {n} {s}", "{b} {l} {s} {f} {n}, {c}", "{b} {l} {f} {n} {s} in {c}"],
        blurb: "A laptop with a sharp display, a comfortable keyboard and a battery that lasts the working day.",
        ..BASE
    },
    Kind {
        noun: "Ultrabook", kind: "laptop", code: "UB", dollars: (799, 2_199), grams: (900, 1_400),
        makers: &[
            ("Dell", &["XPS 13", "XPS 13 Plus"]),
            ("Lenovo", &["Yoga Slim 7", "ThinkPad X1 Nano"]),
            ("Asus", &["Zenbook S 13", "Zenbook S 14"]),
            ("HP", &["Spectre x360 14", "EliteBook 1040"]),
            ("Acer", &["Swift 14", "Swift Edge 16"]),
            ("LG", &["Gram 14", "Gram 16"]),
        ],
        features: &["", "Thin and Light"],
        specs: &[("memory", &["8GB", "16GB", "32GB"], " RAM"), ("storage", &["256GB", "512GB", "1TB"], " SSD")],
        colors: TECH,
        titles: &["{b} {l} {f} {n} {s}", "{b} {l} {s} {f} {n}, {c}"],
        blurb: "A thin and light laptop under 1.4 kg that wakes instantly and charges over USB-C.",
        ..BASE
    },
    Kind {
        noun: "Chromebook", kind: "laptop", code: "CB", dollars: (199, 699), grams: (1_000, 1_800),
        makers: &[
            ("Acer", &["Spin 714", "Plus 515", "314"]),
            ("HP", &["x360 14c", "Fortis 14"]),
            ("Lenovo", &["IdeaPad Flex 5i", "Duet"]),
            ("Asus", &["CX34", "Flip CX5"]),
            ("Samsung", &["Galaxy Go"]),
        ],
        features: &["", "2-in-1", "Touchscreen"],
        specs: &[("memory", &["4GB", "8GB"], " RAM"), ("storage", &["64GB", "128GB", "256GB"], "")],
        colors: TECH,
        titles: &["{b} {l} {f} {n} {s}", "{b} {f} {n} {l}, {s}, {c}"],
        blurb: "A ChromeOS laptop that starts in seconds, updates itself and is made for school and the web.",
        ..BASE
    },
    Kind {
        noun: "Gaming Laptop", kind: "laptop", code: "GL", dollars: (899, 3_499), grams: (2_000, 3_500),
        makers: &[
            ("Asus", &["ROG Strix G16", "ROG Zephyrus G14", "TUF Gaming A15"]),
            ("MSI", &["Katana 15", "Raider GE78", "Stealth 16"]),
            ("Lenovo", &["Legion 5", "Legion Pro 7i", "LOQ 15"]),
            ("Acer", &["Predator Helios 16", "Nitro V 15"]),
            ("HP", &["Omen 16", "Victus 15"]),
            ("Razer", &["Blade 14", "Blade 16"]),
            ("Alienware", &["m16", "x16"]),
        ],
        features: &["", "RTX 4060", "RTX 4070"],
        specs: &[("memory", &["16GB", "32GB"], " RAM"), ("storage", &["512GB", "1TB", "2TB"], " SSD")],
        colors: &["black", "grey"],
        titles: &["{b} {l} {f} {n} {s}", "{b} {l} {s} {f} {n}"],
        blurb: "A gaming laptop with a fast refresh rate display and a dedicated graphics card for the latest games.",
        ..BASE
    },
    Kind {
        noun: "Laptop Bag", kind: "laptop bag", code: "LB", dollars: (29, 149), grams: (400, 1_500),
        makers: &[
            ("Targus", &["CitySmart", "Classic"]),
            ("Samsonite", &["Classic Business", "Xenon 3.0"]),
            ("Thule", &["Subterra", "Crossover 2"]),
            ("Incase", &["Icon", "City"]),
            ("Tumi", &["Alpha"]),
        ],
        features: &["", "Messenger", "Backpack", "Sleeve"],
        specs: &[("screen", &["13 inch", "14 inch", "15.6 inch", "16 inch", "17 inch"], "")],
        materials: &["nylon", "polyester", "leather"],
        colors: &["black", "grey", "blue"], titles: SPEC_LAST,
        blurb: "A padded laptop bag with room for a charger, documents and a water bottle.",
        ..BASE
    },
    Kind {
        noun: "Laptop Stand", kind: "laptop stand", code: "LS", dollars: (19, 89), grams: (300, 1_200),
        makers: &[
            ("Rain Design", &["mStand"]),
            ("Twelve South", &["Curve", "BookArc"]),
            ("Nulaxy", &[]),
            ("Satechi", &[]),
            ("Roost", &["V3"]),
        ],
        features: &["", "Adjustable", "Foldable", "Ergonomic"],
        materials: &["aluminium", "steel"],
        colors: TECH, titles: SPEC_LAST,
        blurb: "A laptop stand that raises the screen to eye level for a better posture.",
        ..BASE
    },
];

#[rustfmt::skip]
const TVS: &[Kind] = &[
    Kind {
        noun: "OLED TV", kind: "tv", code: "OL", dollars: (999, 4_999), grams: (9_000, 25_000),
        makers: &[
            ("LG", &["B4", "C3", "C4", "G4"]),
            ("Sony", &["Bravia 8", "Bravia XR A80L", "Bravia XR A95L"]),
            ("Samsung", &["S85D", "S90D", "S95D"]),
            ("Panasonic", &["Z85A", "Z95A"]),
        ],
        features: &["4K", "4K Smart", "Smart"],
        specs: &[("screen", &["42 inch", "48 inch", "55 inch", "65 inch", "77 inch", "83 inch"], "")],
        extra: &[("panel", "OLED")],
        colors: DARK, titles: SCREEN,
        blurb: "Self-lit OLED pixels give perfect blacks, with Dolby Vision, HDR10 and a 120Hz panel for games.",
        ..BASE
    },
    Kind {
        noun: "QLED TV", kind: "tv", code: "QN", dollars: (399, 2_999), grams: (7_000, 25_000),
        makers: &[
            ("Samsung", &["Q60D", "Q80D", "QN90D Neo"]),
            ("TCL", &["Q6", "QM7", "QM8"]),
            ("Hisense", &["U6", "U7N", "U8N"]),
            ("Vizio", &["Quantum", "M-Series"]),
        ],
        features: &["4K", "4K Smart", "Smart"],
        specs: &[("screen", &["43 inch", "50 inch", "55 inch", "65 inch", "75 inch", "85 inch"], "")],
        extra: &[("panel", "QLED")],
        colors: DARK, titles: SCREEN,
        blurb: "Quantum dot color and bright HDR, with the streaming apps built in.",
        ..BASE
    },
    Kind {
        noun: "LED TV", kind: "tv", code: "UN", dollars: (129, 999), grams: (4_000, 20_000),
        makers: &[
            ("Samsung", &["Crystal UHD DU7200", "Crystal UHD DU8000"]),
            ("LG", &["UT7000", "UR9000"]),
            ("TCL", &["S4", "S5"]),
            ("Hisense", &["A6", "A7"]),
            ("Sony", &["Bravia 3", "X77L"]),
            ("Insignia", &["F30", "F50"]),
            ("Vizio", &["V-Series"]),
        ],
        features: &["4K", "4K Smart", "Smart", "HD Smart"],
        specs: &[("screen", &["32 inch", "43 inch", "50 inch", "55 inch", "65 inch", "75 inch"], "")],
        extra: &[("panel", "LED")],
        colors: DARK, titles: SCREEN,
        blurb: "An LED TV with a 4K picture, HDR and the streaming apps built in.",
        ..BASE
    },
    Kind {
        noun: "TV Wall Mount", kind: "tv wall mount", code: "WM", dollars: (29, 199), grams: (2_000, 8_000),
        makers: &[
            ("Sanus", &["Advanced", "Premium"]),
            ("Mounting Dream", &[]),
            ("Echogear", &[]),
            ("Kanto", &["PS300"]),
        ],
        features: &["Full Motion", "Tilting", "Fixed"],
        specs: &[("screen", &["32-55 inch", "42-70 inch", "55-85 inch"], "")],
        materials: &["steel"],
        colors: &["black"], titles: SPEC_LAST,
        blurb: "A TV wall mount for flat and curved TVs, with the screws and a level in the box.",
        ..BASE
    },
    Kind {
        noun: "Streaming Device", kind: "streaming device", code: "SD", dollars: (29, 199), grams: (40, 400),
        makers: &[
            ("Roku", &["Express 4K", "Streaming Stick 4K", "Ultra"]),
            ("Amazon", &["Fire TV Stick 4K", "Fire TV Stick Lite", "Fire TV Cube"]),
            ("Google", &["Chromecast", "TV Streamer"]),
            ("Apple", &["TV 4K"]),
        ],
        features: &["", "HD", "4K HDR"],
        colors: &["black", "white"],
        titles: &["{b} {l} {f} {n}", "{b} {l} {n}, {c}"],
        blurb: "A streaming device that plugs into the TV and plays Netflix, YouTube, Prime Video and more.",
        ..BASE
    },
];

#[rustfmt::skip]
const AUDIO: &[Kind] = &[
    Kind {
        noun: "Headphones", kind: "headphones", code: "WH", dollars: (49, 549), grams: (200, 400),
        makers: &[
            ("Sony", &["WH-1000XM5", "WH-CH720N", "ULT Wear"]),
            ("Bose", &["QuietComfort Ultra", "QuietComfort 45", "700"]),
            ("Sennheiser", &["Momentum 4", "HD 560S", "HD 660S2"]),
            ("Audio-Technica", &["ATH-M50x", "ATH-M40x"]),
            ("Apple", &["AirPods Max"]),
            ("Beats", &["Studio Pro", "Solo 4"]),
            ("JBL", &["Tune 760NC", "Live 770NC"]),
        ],
        features: &["Wireless", "Noise Cancelling", "Over-Ear", "Bluetooth", "Studio"],
        colors: &["black", "white", "silver", "blue"], titles: LINED,
        blurb: "Over-ear headphones with rich sound, soft cushions and up to 30 hours of battery.",
        ..BASE
    },
    Kind {
        noun: "Earbuds", kind: "earbuds", code: "WF", dollars: (29, 299), grams: (40, 70),
        makers: &[
            ("Apple", &["AirPods Pro 2", "AirPods 4"]),
            ("Samsung", &["Galaxy Buds3 Pro", "Galaxy Buds FE"]),
            ("Sony", &["WF-1000XM5", "WF-C700N"]),
            ("Bose", &["QuietComfort Ultra", "QuietComfort"]),
            ("Jabra", &["Elite 10", "Elite 4"]),
            ("Beats", &["Fit Pro", "Studio Buds"]),
            ("Google", &["Pixel Buds Pro 2"]),
        ],
        features: &["Wireless", "True Wireless", "Noise Cancelling", "Bluetooth"],
        colors: &["black", "white", "blue", "green"], titles: LINED,
        blurb: "True wireless earbuds with a charging case, a snug fit and clear calls.",
        ..BASE
    },
    Kind {
        noun: "Speaker", kind: "speaker", code: "SR", dollars: (49, 499), grams: (500, 4_000),
        makers: &[
            ("JBL", &["Flip 6", "Charge 5", "Go 4", "Boombox 3"]),
            ("Bose", &["SoundLink Flex", "SoundLink Max"]),
            ("Sonos", &["Era 100", "Move 2", "Roam 2"]),
            ("Ultimate Ears", &["Boom 4", "Wonderboom 4"]),
            ("Marshall", &["Emberton II", "Stanmore III"]),
            ("Sony", &["ULT Field 1"]),
        ],
        features: &["Portable Bluetooth", "Wireless", "Smart", "Waterproof"],
        colors: ALL, titles: LINED,
        blurb: "A speaker with deep bass and room-filling sound that pairs with any phone.",
        ..BASE
    },
    Kind {
        noun: "Soundbar", kind: "soundbar", code: "HW", dollars: (99, 999), grams: (2_000, 8_000),
        makers: &[
            ("Sonos", &["Arc", "Beam", "Ray"]),
            ("Samsung", &["HW-Q990D", "HW-B550"]),
            ("Bose", &["Smart 600", "Smart Ultra"]),
            ("Vizio", &["V-Series", "M-Series"]),
            ("Sony", &["HT-A7000", "HT-S400"]),
            ("Yamaha", &["SR-C20A"]),
        ],
        features: &["", "Dolby Atmos", "Wireless"],
        specs: &[("channels", &["2.0 channel", "2.1 channel", "3.1 channel", "5.1 channel"], "")],
        colors: DARK, titles: LINED,
        blurb: "A soundbar for the TV with clear dialogue and cinema sound, connected over HDMI eARC.",
        ..BASE
    },
    Kind {
        noun: "Turntable", kind: "turntable", code: "LP", dollars: (99, 799), grams: (3_000, 9_000),
        makers: &[
            ("Audio-Technica", &["AT-LP60X", "AT-LP120XUSB"]),
            ("Victrola", &["Eastwood", "Stream Carbon"]),
            ("Fluance", &["RT81", "RT85"]),
            ("Pro-Ject", &["Debut Carbon EVO", "T1"]),
        ],
        features: &["Belt-Drive", "Direct-Drive", "Bluetooth", ""],
        materials: &["walnut", "aluminium", "mdf"],
        colors: &["black", "white", "silver"], titles: LINED,
        blurb: "A record player with a built-in preamp that plays 33 and 45 rpm vinyl.",
        ..BASE
    },
    Kind {
        noun: "Microphone", kind: "microphone", code: "MV", dollars: (39, 399), grams: (300, 1_000),
        makers: &[
            ("Shure", &["SM7B", "SM58", "MV7"]),
            ("Blue", &["Yeti", "Snowball"]),
            ("Rode", &["NT-USB", "PodMic", "VideoMic GO II"]),
            ("Audio-Technica", &["AT2020", "AT2020USB"]),
            ("HyperX", &["QuadCast S"]),
        ],
        features: &["USB", "Condenser", "Dynamic", "Podcast"],
        colors: &["black", "silver", "white"], titles: LINED,
        blurb: "A microphone for podcasts, streaming and vocals, with a stand or a shock mount.",
        ..BASE
    },
];

#[rustfmt::skip]
const COMPUTERS: &[Kind] = &[
    Kind {
        noun: "Monitor", kind: "monitor", code: "MN", dollars: (149, 1_299), grams: (3_500, 9_000),
        makers: &[
            ("Dell", &["UltraSharp U2723QE", "S2721DGF", "P2423D"]),
            ("LG", &["UltraGear", "UltraFine"]),
            ("Samsung", &["Odyssey G5", "ViewFinity S8"]),
            ("Asus", &["ProArt", "TUF Gaming"]),
            ("BenQ", &["PD2705U", "Mobiuz"]),
            ("Acer", &["Nitro"]),
        ],
        features: &["4K", "Curved Gaming", "IPS", "QHD", "Ultrawide"],
        specs: &[("screen", &["24 inch", "27 inch", "32 inch", "34 inch"], "")],
        colors: DARK,
        titles: &["{b} {s} {f} {n} {l}", "{b} {l} {s} {f} {n}", "{b} {l} {f} {n}, {s}, {c}"],
        blurb: "A computer monitor with thin bezels, a height-adjustable stand and HDMI and USB-C inputs.",
        ..BASE
    },
    Kind {
        noun: "Keyboard", kind: "keyboard", code: "KB", dollars: (29, 229), grams: (400, 1_200),
        makers: &[
            ("Logitech", &["MX Keys S", "K380", "G915"]),
            ("Keychron", &["K2", "Q1"]),
            ("Razer", &["BlackWidow V4", "Huntsman Mini"]),
            ("Corsair", &["K70"]),
            ("Apple", &["Magic Keyboard"]),
            ("Microsoft", &["Ergonomic"]),
        ],
        features: &["Wireless", "Mechanical", "Bluetooth", "Ergonomic", "Gaming"],
        colors: TECH, titles: LINED,
        blurb: "A computer keyboard with a comfortable key feel that pairs with Mac, Windows and tablets.",
        ..BASE
    },
    Kind {
        noun: "Mouse", kind: "mouse", code: "MS", dollars: (19, 149), grams: (60, 140),
        makers: &[
            ("Logitech", &["MX Master 3S", "G502 Hero", "M720", "Pebble"]),
            ("Razer", &["DeathAdder V3", "Basilisk V3"]),
            ("Apple", &["Magic Mouse"]),
            ("Microsoft", &["Bluetooth Ergonomic"]),
            ("Corsair", &["Katar Pro"]),
        ],
        features: &["Wireless", "Ergonomic", "Gaming", "Bluetooth"],
        colors: TECH, titles: LINED,
        blurb: "A computer mouse with a precise sensor and a long-lasting battery.",
        ..BASE
    },
    Kind {
        noun: "Webcam", kind: "webcam", code: "C", dollars: (29, 199), grams: (80, 250),
        makers: &[
            ("Logitech", &["C920", "Brio", "StreamCam"]),
            ("Razer", &["Kiyo Pro"]),
            ("Anker", &["PowerConf C200"]),
            ("Elgato", &["Facecam"]),
        ],
        features: &["", "HD", "Streaming"],
        specs: &[("resolution", &["720p", "1080p", "4K"], "")],
        colors: &["black", "white"], titles: SPEC_LAST,
        blurb: "A webcam for video calls with autofocus, light correction and a built-in microphone.",
        ..BASE
    },
    Kind {
        noun: "Docking Station", kind: "docking station", code: "DS", dollars: (99, 399), grams: (300, 800),
        makers: &[
            ("CalDigit", &["TS4", "Element Hub"]),
            ("Anker", &["777", "563"]),
            ("Dell", &["WD22TB4"]),
            ("Plugable", &[]),
            ("Kensington", &["SD5700T"]),
        ],
        features: &["USB-C", "Thunderbolt 4", "Dual Monitor"],
        specs: &[("ports", &["7 ports", "12 ports", "18 ports"], "")],
        colors: &["grey", "black", "silver"], titles: SPEC_LAST,
        blurb: "A laptop docking station that connects monitors, network and USB devices over one cable.",
        ..BASE
    },
    Kind {
        noun: "Printer", kind: "printer", code: "PR", dollars: (79, 499), grams: (5_000, 15_000),
        makers: &[
            ("HP", &["OfficeJet Pro 9015e", "LaserJet M209dw", "DeskJet 2755e", "Envy 6055e"]),
            ("Canon", &["PIXMA TS6420a", "imageCLASS MF273dw"]),
            ("Epson", &["EcoTank ET-2800", "EcoTank ET-4850", "WorkForce WF-2960"]),
            ("Brother", &["HL-L2350DW", "MFC-J4335DW"]),
        ],
        features: &["All-in-One", "Wireless", "Laser", "Inkjet", "Color Laser"],
        colors: &["white", "black", "grey"], titles: LINED,
        blurb: "A home and office printer that prints, scans and copies from a phone or computer over Wi-Fi.",
        ..BASE
    },
    Kind {
        noun: "External Hard Drive", kind: "external hard drive", code: "HD", dollars: (59, 299), grams: (50, 250),
        makers: &[
            ("Samsung", &["T7 Shield", "T9"]),
            ("SanDisk", &["Extreme Portable"]),
            ("WD", &["My Passport", "Elements"]),
            ("Seagate", &["Portable", "Expansion"]),
            ("LaCie", &["Rugged Mini"]),
        ],
        features: &["", "Portable", "USB 3.2"],
        specs: &[("storage", &["1TB", "2TB", "4TB", "5TB"], "")],
        colors: &["black", "grey", "blue", "orange"], titles: LINED,
        blurb: "An external hard drive for backups, photos and games, powered over USB.",
        ..BASE
    },
    Kind {
        noun: "Router", kind: "router", code: "AX", dollars: (79, 599), grams: (400, 1_500),
        makers: &[
            ("Netgear", &["Nighthawk", "Orbi"]),
            ("TP-Link", &["Archer AX55", "Deco X55", "Archer BE550"]),
            ("Asus", &["RT-AX86U", "ZenWiFi"]),
            ("Eero", &["Pro 6E", "6 Plus"]),
            ("Linksys", &["Velop"]),
        ],
        features: &["Wi-Fi 6", "Wi-Fi 6E", "Mesh Wi-Fi", "Wi-Fi 7"],
        colors: &["black", "white"], titles: LINED,
        blurb: "A wireless router that covers the whole home with fast, stable Wi-Fi.",
        ..BASE
    },
    Kind {
        noun: "Desktop Computer", kind: "desktop computer", code: "DT", dollars: (499, 2_499), grams: (1_200, 12_000),
        makers: &[
            ("Apple", &["iMac 24", "Mac mini", "Mac Studio"]),
            ("Dell", &["XPS 8960", "OptiPlex 7020", "Inspiron 3030"]),
            ("HP", &["Pavilion TP01", "Omen 45L", "ProDesk 400"]),
            ("Lenovo", &["IdeaCentre 5", "ThinkCentre M70q", "Legion Tower 5"]),
        ],
        features: &["", "Business", "Home and Office"],
        specs: &[("memory", &["8GB", "16GB", "32GB"], " RAM"), ("storage", &["256GB", "512GB", "1TB"], " SSD")],
        colors: TECH,
        titles: &["{b} {l} {f} {n} {s}", "{b} {l} {s} {f} {n}, {c}"],
        blurb: "A desktop PC for work, school and play, with Wi-Fi, Bluetooth and plenty of USB ports.",
        ..BASE
    },
];

#[rustfmt::skip]
const TABLETS: &[Kind] = &[
    Kind {
        noun: "Tablet", kind: "tablet", code: "TB", dollars: (99, 1_299), grams: (300, 700),
        makers: &[
            ("Apple", &["iPad", "iPad Air", "iPad Pro", "iPad mini"]),
            ("Samsung", &["Galaxy Tab S9", "Galaxy Tab S9 FE", "Galaxy Tab A9"]),
            ("Amazon", &["Fire HD 10", "Fire Max 11", "Fire HD 8"]),
            ("Lenovo", &["Tab P12", "Tab M10"]),
            ("Microsoft", &["Surface Pro"]),
        ],
        features: &["", "Wi-Fi", "5G"],
        specs: &[("storage", &["32GB", "64GB", "128GB", "256GB", "512GB"], "")],
        colors: PHONE, titles: LINED,
        blurb: "A tablet for reading, streaming and drawing, with a bright screen and all-day battery.",
        ..BASE
    },
    Kind {
        noun: "E-Reader", kind: "e-reader", code: "ER", dollars: (99, 399), grams: (170, 450),
        makers: &[
            ("Amazon", &["Kindle", "Kindle Paperwhite", "Kindle Scribe"]),
            ("Kobo", &["Clara BW", "Libra Color", "Sage"]),
            ("Boox", &["Go 7", "Note Air3"]),
        ],
        features: &["", "Waterproof", "Glare-Free"],
        specs: &[("storage", &["16GB", "32GB", "64GB"], "")],
        colors: &["black", "white", "green", "blue"], titles: LINED,
        blurb: "An e-reader with a glare-free paper-like screen and weeks of battery.",
        ..BASE
    },
    Kind {
        noun: "Stylus", kind: "stylus", code: "ST", dollars: (29, 129), grams: (15, 25),
        makers: &[
            ("Apple", &["Pencil Pro", "Pencil USB-C"]),
            ("Samsung", &["S Pen Pro", "S Pen"]),
            ("Logitech", &["Crayon"]),
            ("Microsoft", &["Surface Slim Pen 2"]),
        ],
        features: &["", "Bluetooth", "Pressure-Sensitive"],
        colors: &["white", "black", "grey"], titles: LINED,
        blurb: "A stylus pen for notes and drawing, with palm rejection and tilt.",
        ..BASE
    },
    Kind {
        noun: "Tablet Case", kind: "tablet case", code: "TC", dollars: (19, 99), grams: (150, 500),
        makers: &[
            ("OtterBox", &["Defender", "Symmetry Folio"]),
            ("Logitech", &["Combo Touch", "Rugged Folio"]),
            ("ESR", &["Rebound"]),
            ("Apple", &["Smart Folio", "Magic Keyboard"]),
        ],
        features: &["", "Folio", "Keyboard"],
        specs: &[("fits", &["iPad 10.9 inch", "iPad Air 11 inch", "iPad Pro 13 inch", "Galaxy Tab S9"], "")],
        materials: &["polyurethane", "silicone", "polycarbonate"],
        colors: ALL, titles: MADE_FOR,
        blurb: "A tablet case with a stand that protects the corners and the screen.",
        ..BASE
    },
];

#[rustfmt::skip]
const WEARABLES: &[Kind] = &[
    Kind {
        noun: "Smartwatch", kind: "smartwatch", code: "SW", dollars: (149, 799), grams: (30, 70),
        makers: &[
            ("Apple", &["Watch Series 10", "Watch SE", "Watch Ultra 2"]),
            ("Samsung", &["Galaxy Watch7", "Galaxy Watch Ultra", "Galaxy Watch FE"]),
            ("Google", &["Pixel Watch 3"]),
            ("Garmin", &["Venu 3", "Forerunner 265", "Fenix 8"]),
            ("Fitbit", &["Versa 4", "Sense 2"]),
        ],
        features: &["", "GPS", "GPS and Cellular"],
        specs: &[("case", &["40mm", "41mm", "44mm", "45mm", "47mm"], "")],
        colors: PHONE, titles: LINED,
        blurb: "A smartwatch that tracks workouts, heart rate and sleep, and shows calls and messages.",
        ..BASE
    },
    Kind {
        noun: "Fitness Tracker", kind: "fitness tracker", code: "FT", dollars: (49, 249), grams: (20, 35),
        makers: &[
            ("Fitbit", &["Charge 6", "Inspire 3"]),
            ("Garmin", &["Vivosmart 5", "Vivofit 4"]),
            ("Whoop", &["4.0"]),
            ("Xiaomi", &["Smart Band 9"]),
            ("Amazfit", &["Band 7", "Helio Strap"]),
        ],
        features: &["", "Waterproof", "Heart Rate"],
        colors: ALL, titles: LINED,
        blurb: "A fitness tracker that counts steps, heart rate and sleep, with a week of battery.",
        ..BASE
    },
    Kind {
        noun: "Watch Band", kind: "watch band", code: "WB", dollars: (19, 99), grams: (20, 60),
        makers: &[
            ("Apple", &["Sport Band", "Solo Loop", "Sport Loop"]),
            ("Samsung", &["Sport Band", "Fabric Band"]),
            ("Barton", &["Elite Silicone"]),
            ("Nomad", &["Sport Band", "Modern Band"]),
        ],
        features: &["", "Quick Release"],
        specs: &[("fits", &["Apple Watch 41mm", "Apple Watch 45mm", "Galaxy Watch 20mm"], "")],
        materials: &["silicone", "nylon", "leather", "stainless steel"],
        colors: ALL, titles: MADE_FOR, sizes: &[&["S", "M", "L"], &["S/M", "M/L"]],
        blurb: "A replacement watch band that snaps on in seconds and is comfortable all day.",
        ..BASE
    },
];

#[rustfmt::skip]
const CAMERAS: &[Kind] = &[
    Kind {
        noun: "Mirrorless Camera", kind: "camera", code: "MC", dollars: (599, 3_999), grams: (400, 900),
        makers: &[
            ("Canon", &["EOS R50", "EOS R8", "EOS R6 Mark II"]),
            ("Sony", &["Alpha a7 IV", "Alpha a6400", "ZV-E10"]),
            ("Nikon", &["Z6 III", "Z50", "Zf"]),
            ("Fujifilm", &["X-T5", "X100VI", "X-S20"]),
            ("Panasonic", &["Lumix S5 II", "Lumix G7"]),
        ],
        features: &["", "Full-Frame", "4K"],
        specs: &[("resolution", &["24MP", "26MP", "33MP", "40MP"], "")],
        colors: &["black", "silver"], titles: LINED,
        blurb: "A mirrorless camera with fast autofocus, 4K video and interchangeable lenses.",
        ..BASE
    },
    Kind {
        noun: "DSLR Camera", kind: "camera", code: "DC", dollars: (449, 2_999), grams: (500, 1_000),
        makers: &[
            ("Canon", &["EOS Rebel T7", "EOS 90D", "EOS 5D Mark IV"]),
            ("Nikon", &["D3500", "D7500", "D850"]),
            ("Pentax", &["K-3 Mark III", "KF"]),
        ],
        features: &["", "with 18-55mm Lens"],
        specs: &[("resolution", &["24MP", "30MP", "45MP"], "")],
        colors: &["black"],
        titles: &["{b} {l} {s} {n} {f}", "{b} {l} {n} {f}, {s}"],
        blurb: "A DSLR camera with an optical viewfinder, a large sensor and a long battery life.",
        ..BASE
    },
    Kind {
        noun: "Action Camera", kind: "action camera", code: "AC", dollars: (199, 549), grams: (120, 200),
        makers: &[
            ("GoPro", &["HERO13 Black", "HERO12 Black", "HERO"]),
            ("DJI", &["Osmo Action 5 Pro", "Osmo Action 4"]),
            ("Insta360", &["X4", "Ace Pro 2"]),
        ],
        features: &["", "Waterproof", "5K", "4K"],
        colors: &["black", "grey"], titles: LINED,
        blurb: "A waterproof action camera with image stabilization for biking, skiing and diving.",
        ..BASE
    },
    Kind {
        noun: "Instant Camera", kind: "instant camera", code: "IC", dollars: (59, 199), grams: (250, 500),
        makers: &[
            ("Fujifilm", &["Instax Mini 12", "Instax Square SQ1", "Instax Wide 400"]),
            ("Polaroid", &["Now Gen 2", "Go Gen 2", "I-2"]),
            ("Kodak", &["Smile", "Printomatic"]),
        ],
        features: &["", "Film"],
        colors: BRIGHT, titles: LINED,
        blurb: "An instant camera that prints each photo in seconds, ready to share.",
        ..BASE
    },
    Kind {
        noun: "Camera Lens", kind: "camera lens", code: "LN", dollars: (149, 2_199), grams: (150, 1_500),
        makers: &[
            ("Canon", &["RF", "EF"]),
            ("Sony", &["FE", "G Master"]),
            ("Nikon", &["Nikkor Z"]),
            ("Sigma", &["Art", "Contemporary"]),
            ("Tamron", &["Di III"]),
        ],
        features: &["", "Autofocus", "Mirrorless"],
        specs: &[("focal length", &["24mm", "35mm", "50mm", "85mm", "24-70mm", "70-200mm"], "")],
        colors: &["black"],
        titles: &["{b} {l} {s} {f} {n}", "{b} {s} {l} {f} {n} {m}"],
        blurb: "A camera lens with sharp detail to the corners and quiet autofocus for photo and video.",
        ..BASE
    },
    Kind {
        noun: "Drone", kind: "drone", code: "DR", dollars: (299, 1_599), grams: (250, 900),
        makers: &[
            ("DJI", &["Mini 4 Pro", "Mini 3", "Air 3", "Avata 2", "Mavic 3 Pro"]),
            ("Autel", &["EVO Lite", "EVO Nano"]),
            ("Holy Stone", &["HS720"]),
        ],
        features: &["", "4K Camera", "Fly More Combo"],
        colors: &["grey", "white", "orange"], titles: LINED,
        blurb: "A camera drone with obstacle sensing, a 4K camera and up to 30 minutes of flight.",
        ..BASE
    },
    Kind {
        noun: "Tripod", kind: "tripod", code: "TP", dollars: (29, 299), grams: (500, 2_500),
        makers: &[
            ("Manfrotto", &["Befree", "Element"]),
            ("Joby", &["GorillaPod 3K", "GorillaPod 5K"]),
            ("Peak Design", &["Travel"]),
            ("Vanguard", &["VEO 3"]),
        ],
        features: &["", "Travel", "Flexible", "Carbon Fiber"],
        specs: &[("height", &["40 inch", "60 inch", "70 inch"], "")],
        materials: &["aluminium", "carbon fiber"],
        colors: &["black", "grey"], titles: SPEC_LAST,
        blurb: "A camera tripod that folds small, with a ball head and a quick-release plate.",
        ..BASE
    },
    Kind {
        noun: "Memory Card", kind: "memory card", code: "MC", dollars: (12, 99), grams: (2, 5),
        makers: &[
            ("SanDisk", &["Extreme Pro", "Extreme", "Ultra"]),
            ("Samsung", &["EVO Select", "PRO Plus"]),
            ("Lexar", &["Professional"]),
            ("Kingston", &["Canvas Go"]),
        ],
        features: &["microSDXC", "SDXC", "microSD"],
        specs: &[("storage", &["64GB", "128GB", "256GB", "512GB"], "")],
        colors: &["black", "red", "blue"], titles: LINED,
        blurb: "A memory card for cameras, phones and the Nintendo Switch, fast enough for 4K video.",
        ..BASE
    },
];

#[rustfmt::skip]
const GAMING: &[Kind] = &[
    Kind {
        noun: "Console", kind: "console", code: "CS", dollars: (199, 699), grams: (400, 4_500),
        makers: &[
            ("Sony", &["PlayStation 5", "PlayStation 5 Slim", "PlayStation 5 Pro", "PlayStation Portal"]),
            ("Microsoft", &["Xbox Series X", "Xbox Series S"]),
            ("Nintendo", &["Switch OLED", "Switch", "Switch Lite"]),
            ("Valve", &["Steam Deck OLED"]),
        ],
        features: &["", "Video Game", "Gaming"],
        colors: &["black", "white"],
        titles: &["{b} {l} {f} {n}", "{b} {l} {f} {n}, {c}", "{b} {l} {n} in {c}"],
        blurb: "A game console for the latest games, with a controller in the box.",
        ..BASE
    },
    Kind {
        noun: "Controller", kind: "controller", code: "CT", dollars: (49, 199), grams: (200, 350),
        makers: &[
            ("Sony", &["DualSense", "DualSense Edge"]),
            ("Microsoft", &["Xbox Wireless", "Xbox Elite Series 2"]),
            ("Nintendo", &["Switch Pro", "Joy-Con Pair"]),
            ("8BitDo", &["Ultimate", "Pro 2"]),
            ("PowerA", &["Enhanced Wired"]),
        ],
        features: &["", "Wireless", "Gaming"],
        colors: ALL, titles: LINED,
        blurb: "A game controller with responsive triggers, rumble and a rechargeable battery.",
        ..BASE
    },
    Kind {
        noun: "Gaming Headset", kind: "gaming headset", code: "GH", dollars: (39, 349), grams: (250, 400),
        makers: &[
            ("SteelSeries", &["Arctis Nova 7", "Arctis Nova Pro"]),
            ("Razer", &["BlackShark V2", "Kraken V4"]),
            ("HyperX", &["Cloud II", "Cloud III"]),
            ("Logitech", &["G Pro X", "G435"]),
            ("Corsair", &["HS80", "Virtuoso"]),
            ("Turtle Beach", &["Stealth 600", "Recon 70"]),
        ],
        features: &["Wireless", "Wired", "7.1 Surround"],
        colors: &["black", "white", "blue"], titles: LINED,
        blurb: "A gaming headset with a clear boom microphone and surround sound for PC, PS5 and Xbox.",
        ..BASE
    },
    Kind {
        noun: "VR Headset", kind: "vr headset", code: "VR", dollars: (299, 549), grams: (500, 650),
        makers: &[
            ("Meta", &["Quest 3", "Quest 3S"]),
            ("Sony", &["PlayStation VR2"]),
            ("Pico", &["4 Ultra"]),
        ],
        features: &["", "All-in-One"],
        specs: &[("storage", &["128GB", "256GB", "512GB"], "")],
        colors: &["white", "black"], titles: LINED,
        blurb: "A virtual reality headset with hand tracking and mixed reality for games and fitness.",
        ..BASE
    },
    Kind {
        noun: "Gaming Chair", kind: "gaming chair", code: "GC", dollars: (199, 599), grams: (15_000, 25_000),
        makers: &[
            ("Secretlab", &["Titan Evo", "Titan Evo XL"]),
            ("DXRacer", &["Formula", "Craft"]),
            ("Corsair", &["TC100 Relaxed"]),
            ("Razer", &["Iskur V2", "Enki"]),
            ("Noblechairs", &["Hero"]),
        ],
        features: &["", "Ergonomic", "Reclining"],
        materials: &["leatherette", "fabric", "mesh"],
        colors: &["black", "red", "blue", "grey", "white"], titles: LINED,
        blurb: "A gaming chair with lumbar support, 4D armrests and a recline for long sessions.",
        ..BASE
    },
    Kind {
        noun: "Capture Card", kind: "capture card", code: "CC", dollars: (99, 299), grams: (100, 300),
        makers: &[
            ("Elgato", &["HD60 X", "4K X", "Game Capture Neo"]),
            ("AVerMedia", &["Live Gamer Portable 2 Plus"]),
            ("Razer", &["Ripsaw X"]),
        ],
        features: &["", "4K", "USB"],
        colors: &["black"], titles: LINED,
        blurb: "A capture card that records and streams console gameplay with no lag.",
        ..BASE
    },
];

#[rustfmt::skip]
const APPLIANCES: &[Kind] = &[
    Kind {
        noun: "Washing Machine", kind: "washing machine", code: "WF", dollars: (549, 1_999), grams: (20_000, 25_000),
        makers: &[
            ("Samsung", &["Bespoke AI"]),
            ("LG", &["WashTower"]),
            ("Whirlpool", &[]),
            ("Bosch", &["300 Series", "500 Series"]),
            ("Miele", &["W1"]),
            ("Maytag", &[]),
            ("Electrolux", &[]),
        ],
        features: &["Front Load", "Top Load", "Smart Front Load", "Compact"],
        specs: &[("capacity", &["2.2 cu ft", "4.5 cu ft", "5.0 cu ft", "5.3 cu ft"], "")],
        colors: APPLIANCE, titles: SPEC_LAST,
        blurb: "A washing machine with steam cleaning, a quick wash cycle and an energy-saving motor.",
        ..BASE
    },
    Kind {
        noun: "Dryer", kind: "dryer", code: "DV", dollars: (499, 1_799), grams: (20_000, 25_000),
        makers: &[
            ("Samsung", &["Bespoke AI"]),
            ("LG", &[]),
            ("Whirlpool", &[]),
            ("Bosch", &["300 Series", "500 Series"]),
            ("Maytag", &[]),
        ],
        features: &["Electric", "Gas", "Heat Pump", "Smart Electric"],
        specs: &[("capacity", &["4.0 cu ft", "7.4 cu ft", "7.8 cu ft"], "")],
        colors: APPLIANCE, titles: SPEC_LAST,
        blurb: "A clothes dryer with a moisture sensor that stops when the load is dry.",
        ..BASE
    },
    Kind {
        noun: "Refrigerator", kind: "refrigerator", code: "RF", dollars: (899, 3_999), grams: (24_000, 25_000),
        makers: &[
            ("Samsung", &["Bespoke", "Family Hub"]),
            ("LG", &["InstaView", "Craft Ice"]),
            ("Whirlpool", &[]),
            ("GE", &["Profile", "Cafe"]),
            ("Frigidaire", &["Gallery"]),
            ("Bosch", &["800 Series"]),
        ],
        features: &["French Door", "Side-by-Side", "Top Freezer", "Counter-Depth French Door"],
        specs: &[("capacity", &["18 cu ft", "22 cu ft", "25 cu ft", "28 cu ft"], "")],
        colors: APPLIANCE, titles: SPEC_LAST,
        blurb: "A refrigerator with an ice maker, adjustable shelves and humidity-controlled crisper drawers.",
        ..BASE
    },
    Kind {
        noun: "Dishwasher", kind: "dishwasher", code: "SH", dollars: (449, 1_599), grams: (20_000, 25_000),
        makers: &[
            ("Bosch", &["100 Series", "300 Series", "500 Series", "800 Series"]),
            ("Miele", &["G 5008", "G 7000"]),
            ("KitchenAid", &[]),
            ("Whirlpool", &[]),
            ("GE", &["Profile"]),
        ],
        features: &["Built-In", "Quiet", "Stainless Steel", "Smart"],
        specs: &[("noise", &["39 dBA", "42 dBA", "44 dBA", "48 dBA"], "")],
        colors: APPLIANCE, titles: SPEC_LAST,
        blurb: "A built-in dishwasher with a third rack, quiet running and a sanitize cycle.",
        ..BASE
    },
    Kind {
        noun: "Microwave", kind: "microwave", code: "NN", dollars: (99, 499), grams: (10_000, 20_000),
        makers: &[
            ("Panasonic", &["Genius", "Inverter"]),
            ("Toshiba", &[]),
            ("GE", &["Profile"]),
            ("Samsung", &[]),
            ("LG", &["NeoChef"]),
            ("Breville", &["Combi Wave"]),
        ],
        features: &["Countertop", "Over-the-Range", "Inverter", "Compact"],
        specs: &[("capacity", &["0.9 cu ft", "1.2 cu ft", "1.6 cu ft", "2.2 cu ft"], "")],
        colors: APPLIANCE, titles: SPEC_LAST,
        blurb: "A microwave oven with sensor cooking, quick defrost and an easy-clean interior.",
        ..BASE
    },
    Kind {
        noun: "Vacuum Cleaner", kind: "vacuum cleaner", code: "VC", dollars: (99, 949), grams: (2_500, 8_000),
        makers: &[
            ("Dyson", &["V8", "V11", "V15 Detect", "Gen5detect"]),
            ("Shark", &["Navigator", "Stratos", "Rocket"]),
            ("Miele", &["Complete C3", "Classic C1"]),
            ("Bissell", &["CleanView"]),
            ("Hoover", &["WindTunnel"]),
            ("Samsung", &["Bespoke Jet"]),
        ],
        features: &["Cordless Stick", "Upright", "Canister", "Bagless"],
        colors: &["grey", "blue", "red", "silver", "orange"], titles: LINED,
        blurb: "A vacuum cleaner with strong suction for carpets and hard floors and a HEPA filter for pet hair and dust.",
        ..BASE
    },
    Kind {
        noun: "Robot Vacuum", kind: "robot vacuum", code: "RV", dollars: (199, 1_399), grams: (3_000, 6_000),
        makers: &[
            ("iRobot", &["Roomba Combo j9", "Roomba j7", "Roomba 694"]),
            ("Roborock", &["S8", "Q5", "Q7 Max"]),
            ("Shark", &["AI Ultra", "Matrix"]),
            ("Eufy", &["RoboVac 11S", "X10 Pro Omni"]),
            ("Ecovacs", &["Deebot T30"]),
        ],
        features: &["", "Self-Emptying", "and Mop"],
        colors: &["black", "white", "grey"],
        titles: &["{b} {l} {n} {f}", "{b} {l} {n} {f}, {c}"],
        blurb: "A robot vacuum cleaner that maps the home, avoids obstacles and runs on a schedule from the app.",
        ..BASE
    },
    Kind {
        noun: "Air Purifier", kind: "air purifier", code: "AP", dollars: (79, 899), grams: (3_000, 12_000),
        makers: &[
            ("Dyson", &["Purifier Cool", "Big Quiet"]),
            ("Levoit", &["Core 300", "Core 400S", "Vital 100S"]),
            ("Coway", &["Airmega AP-1512HH", "Airmega 400"]),
            ("Blueair", &["Blue Pure 211i", "Blue Pure 411"]),
            ("Honeywell", &["HPA300"]),
            ("Philips", &["Series 2000"]),
        ],
        features: &["HEPA", "Smart", "Quiet"],
        specs: &[("coverage", &["200 sq ft", "400 sq ft", "900 sq ft", "1500 sq ft"], "")],
        colors: &["white", "grey", "silver"], titles: SPEC_LAST,
        blurb: "An air purifier with a true HEPA filter that removes dust, pollen, smoke and pet dander.",
        ..BASE
    },
];

#[rustfmt::skip]
const KITCHEN: &[Kind] = &[
    Kind {
        noun: "Kettle", kind: "kettle", code: "KE", dollars: (29, 199), grams: (900, 1_600),
        makers: &[
            ("Breville", &["IQ", "Soft Top"]),
            ("Cuisinart", &["PerfecTemp"]),
            ("Fellow", &["Stagg EKG", "Corvo EKG"]),
            ("Bosch", &["Styline"]),
            ("Smeg", &["50s Style"]),
            ("Hamilton Beach", &[]),
            ("KitchenAid", &[]),
            ("Philips", &[]),
        ],
        features: &["Electric", "Cordless Electric", "Variable Temperature", "Gooseneck Electric"],
        specs: &[("capacity", &["0.9 l", "1 l", "1.5 l", "1.7 l"], "")],
        materials: &["stainless steel", "glass", "plastic"],
        colors: ALL, titles: SPEC_LAST,
        blurb: "An electric kettle that boils water fast and switches off by itself.",
        ..BASE
    },
    Kind {
        noun: "Toaster", kind: "toaster", code: "TO", dollars: (29, 249), grams: (1_500, 3_500),
        makers: &[
            ("Breville", &["Die-Cast", "Smart Toaster"]),
            ("Cuisinart", &["Classic"]),
            ("Smeg", &["50s Style"]),
            ("KitchenAid", &[]),
            ("Dualit", &["Classic"]),
            ("Hamilton Beach", &[]),
        ],
        features: &["", "Long Slot", "Wide Slot", "Retro"],
        specs: &[("slots", &["2 slice", "4 slice"], "")],
        materials: &["stainless steel", "plastic"],
        colors: ALL, titles: SPEC_LAST,
        blurb: "A toaster with wide slots for bagels, a defrost setting and a crumb tray.",
        ..BASE
    },
    Kind {
        noun: "Blender", kind: "blender", code: "BL", dollars: (49, 649), grams: (2_000, 5_000),
        makers: &[
            ("Vitamix", &["E310", "A3500", "5200"]),
            ("Ninja", &["Professional", "Professional Plus"]),
            ("NutriBullet", &["Pro", "Full-Size"]),
            ("KitchenAid", &["K400"]),
            ("Breville", &["Super Q", "Fresh and Furious"]),
            ("Oster", &[]),
        ],
        features: &["High-Performance", "Countertop", "Personal"],
        specs: &[("capacity", &["24 oz", "48 oz", "64 oz", "72 oz"], "")],
        colors: &["black", "silver", "red", "white"], titles: SPEC_LAST,
        blurb: "A blender for smoothies, soups and frozen drinks, with a pulse setting.",
        ..BASE
    },
    Kind {
        noun: "Espresso Machine", kind: "espresso machine", code: "EC", dollars: (149, 2_499), grams: (3_000, 12_000),
        makers: &[
            ("Breville", &["Barista Express", "Bambino Plus", "Barista Pro", "Oracle Touch"]),
            ("DeLonghi", &["Dedica", "La Specialista", "Magnifica Evo"]),
            ("Gaggia", &["Classic Pro"]),
            ("Philips", &["3200 Series", "5400 Series"]),
            ("Nespresso", &["Vertuo Next", "Essenza Mini"]),
        ],
        features: &["", "Semi-Automatic", "Fully Automatic"],
        specs: &[("pressure", &["15 bar", "19 bar"], "")],
        materials: &["stainless steel", "plastic"],
        colors: &["silver", "black", "red"], titles: LINED,
        blurb: "An espresso machine with a milk frother for lattes and cappuccinos at home.",
        ..BASE
    },
    Kind {
        noun: "Coffee Maker", kind: "coffee maker", code: "CM", dollars: (29, 349), grams: (1_500, 4_500),
        makers: &[
            ("Cuisinart", &["Coffee Center", "PerfecTemp"]),
            ("Mr. Coffee", &[]),
            ("Keurig", &["K-Elite", "K-Mini", "K-Supreme"]),
            ("Ninja", &["Specialty", "CE251"]),
            ("Breville", &["Precision Brewer"]),
            ("Technivorm", &["Moccamaster KBGV"]),
        ],
        features: &["Drip", "Programmable", "Single Serve", "Thermal"],
        specs: &[("capacity", &["1 cup", "5 cup", "10 cup", "12 cup"], "")],
        colors: &["black", "silver", "white", "red"], titles: SPEC_LAST,
        blurb: "A coffee maker that brews hot coffee on a timer and keeps it warm.",
        ..BASE
    },
    Kind {
        noun: "Air Fryer", kind: "air fryer", code: "AF", dollars: (59, 249), grams: (3_500, 8_000),
        makers: &[
            ("Ninja", &["Max XL", "Foodi DualZone", "Pro"]),
            ("Cosori", &["Pro LE", "TurboBlaze"]),
            ("Instant", &["Vortex Plus", "Vortex Slim"]),
            ("Philips", &["Essential XL", "Premium"]),
            ("Chefman", &["TurboFry"]),
            ("Breville", &["Smart Oven"]),
        ],
        features: &["", "Digital", "Dual Basket", "Compact"],
        specs: &[("capacity", &["4 qt", "5.5 qt", "6 qt", "8 qt", "10 qt"], "")],
        colors: &["black", "grey", "white", "silver"], titles: SPEC_LAST,
        blurb: "An air fryer that crisps fries, wings and vegetables with little or no oil.",
        ..BASE
    },
    Kind {
        noun: "Stand Mixer", kind: "stand mixer", code: "KS", dollars: (199, 699), grams: (5_000, 12_000),
        makers: &[
            ("KitchenAid", &["Artisan", "Classic", "Professional 600"]),
            ("Cuisinart", &["Precision Master"]),
            ("Kenwood", &["Chef", "kMix"]),
            ("Smeg", &[]),
            ("Hamilton Beach", &[]),
        ],
        features: &["", "Tilt-Head", "Bowl-Lift"],
        specs: &[("capacity", &["4.5 qt", "5 qt", "6 qt"], "")],
        colors: ALL, titles: SPEC_LAST,
        blurb: "A stand mixer with a dough hook, a flat beater and a whisk for bread, cakes and cookies.",
        ..BASE
    },
    Kind {
        noun: "Pressure Cooker", kind: "pressure cooker", code: "PC", dollars: (79, 249), grams: (4_000, 7_000),
        makers: &[
            ("Instant", &["Pot Duo", "Pot Pro", "Pot Duo Crisp"]),
            ("Ninja", &["Foodi"]),
            ("Crock-Pot", &["Express"]),
            ("Cuisinart", &[]),
        ],
        features: &["Electric", "Multi-Use", "9-in-1"],
        specs: &[("capacity", &["3 qt", "6 qt", "8 qt"], "")],
        colors: &["black", "silver", "grey"], titles: SPEC_LAST,
        blurb: "A pressure cooker that also slow cooks, steams and sautes, and makes dinner in half the time.",
        ..BASE
    },
    Kind {
        noun: "Chef Knife", kind: "chef knife", code: "CK", dollars: (29, 249), grams: (150, 300),
        makers: &[
            ("Wusthof", &["Classic", "Gourmet"]),
            ("Zwilling", &["Pro", "Four Star"]),
            ("Victorinox", &["Fibrox Pro"]),
            ("Shun", &["Classic"]),
            ("Global", &["G-2"]),
            ("Mercer", &["Genesis"]),
        ],
        features: &["", "Forged", "Japanese"],
        specs: &[("blade", &["6 inch", "8 inch", "10 inch"], "")],
        materials: &["stainless steel", "carbon steel", "damascus steel"],
        colors: &["black", "silver"], titles: SPEC_LAST,
        blurb: "A chef knife with a razor-sharp blade that slices, dices and minces.",
        ..BASE
    },
    Kind {
        noun: "Frying Pan", kind: "frying pan", code: "FP", dollars: (19, 199), grams: (700, 3_500),
        makers: &[
            ("Lodge", &[]),
            ("All-Clad", &["D3", "HA1"]),
            ("T-fal", &["Ultimate"]),
            ("Le Creuset", &["Toughened"]),
            ("Calphalon", &["Classic"]),
            ("Made In", &[]),
        ],
        features: &["Nonstick", "Cast Iron", "Stainless Steel", "Carbon Steel"],
        specs: &[("diameter", &["8 inch", "10 inch", "12 inch"], "")],
        materials: &["aluminium", "cast iron", "stainless steel", "carbon steel"],
        colors: &["black", "silver", "red", "blue"], titles: SPEC_LAST,
        blurb: "A frying pan that heats evenly, for eggs, pancakes and seared steaks; oven safe.",
        ..BASE
    },
];

#[rustfmt::skip]
const HOME: &[Kind] = &[
    Kind {
        noun: "Desk Lamp", kind: "desk lamp", code: "DL", dollars: (19, 249), grams: (600, 2_500),
        makers: &[
            ("BenQ", &["e-Reading", "ScreenBar"]),
            ("IKEA", &["Forsa", "Tertial"]),
            ("Anglepoise", &["Type 75"]),
            ("TaoTronics", &[]),
            ("Philips Hue", &["Go"]),
        ],
        features: &["LED", "Dimmable LED", "Adjustable", "Swing Arm"],
        materials: &["aluminium", "steel", "plastic"],
        colors: ALL, titles: SPEC_LAST,
        blurb: "A desk lamp with an adjustable arm and warm to cool white light for reading and work.",
        ..BASE
    },
    Kind {
        noun: "Throw Blanket", kind: "throw blanket", code: "TB", dollars: (19, 199), grams: (800, 2_000),
        makers: &[
            ("Pendleton", &[]),
            ("Barefoot Dreams", &["CozyChic"]),
            ("Bedsure", &[]),
            ("Brooklinen", &[]),
            ("Eddie Bauer", &[]),
        ],
        features: &["Fleece", "Knit", "Sherpa", "Waffle"],
        specs: &[("dimensions", &["50 x 60 inch", "60 x 80 inch"], "")],
        materials: &["cotton", "wool", "polyester", "cashmere"],
        colors: ALL, titles: SPEC_LAST,
        blurb: "A soft throw blanket for the sofa or the bed, machine washable.",
        ..BASE
    },
    Kind {
        noun: "Office Chair", kind: "office chair", code: "OC", dollars: (149, 1_899), grams: (12_000, 25_000),
        makers: &[
            ("Herman Miller", &["Aeron", "Embody", "Sayl"]),
            ("Steelcase", &["Leap", "Gesture", "Series 1"]),
            ("Branch", &["Ergonomic"]),
            ("HON", &["Ignition 2.0"]),
            ("Hbada", &[]),
        ],
        features: &["Ergonomic", "Mesh", "Executive", ""],
        materials: &["mesh", "leather", "fabric"],
        colors: &["black", "grey", "white", "blue"], titles: LINED,
        blurb: "An office chair with adjustable lumbar support, armrests and seat height for long days at the desk.",
        ..BASE
    },
    Kind {
        noun: "Bookshelf", kind: "bookshelf", code: "BS", dollars: (49, 399), grams: (10_000, 25_000),
        makers: &[
            ("IKEA", &["Billy", "Kallax", "Hemnes"]),
            ("Sauder", &[]),
            ("Bush Furniture", &[]),
            ("Walker Edison", &[]),
        ],
        features: &["", "Wide", "Ladder", "Cube"],
        specs: &[("shelves", &["3-shelf", "4-shelf", "5-shelf"], "")],
        materials: &["wood", "oak veneer", "pine", "metal"],
        colors: &["white", "black", "grey", "green"], titles: SPEC_LAST,
        blurb: "A bookshelf with adjustable shelves for books, plants and storage boxes.",
        ..BASE
    },
    Kind {
        noun: "Wall Clock", kind: "wall clock", code: "WC", dollars: (19, 149), grams: (500, 2_000),
        makers: &[
            ("Seiko", &[]),
            ("Howard Miller", &[]),
            ("La Crosse", &[]),
            ("Umbra", &[]),
        ],
        features: &["Silent", "Modern", "Atomic", "Vintage"],
        specs: &[("diameter", &["10 inch", "12 inch", "16 inch"], "")],
        materials: &["wood", "metal", "plastic"],
        colors: ALL, titles: SPEC_LAST,
        blurb: "A wall clock with a silent sweep movement and an easy-to-read face.",
        ..BASE
    },
    Kind {
        noun: "Plant Pot", kind: "plant pot", code: "PP", dollars: (9, 79), grams: (300, 4_000),
        makers: &[
            ("Bloem", &[]),
            ("Mkono", &[]),
            ("Umbra", &[]),
            ("IKEA", &[]),
        ],
        features: &["", "Self-Watering", "Ceramic", "Hanging"],
        specs: &[("diameter", &["4 inch", "6 inch", "8 inch", "12 inch"], "")],
        materials: &["ceramic", "terracotta", "plastic", "concrete"],
        colors: ALL, titles: SPEC_LAST,
        blurb: "A plant pot with a drainage hole and saucer for indoor and outdoor plants.",
        ..BASE
    },
    Kind {
        noun: "Area Rug", kind: "rug", code: "AR", dollars: (49, 699), grams: (2_000, 15_000),
        makers: &[
            ("Safavieh", &[]),
            ("nuLOOM", &[]),
            ("Ruggable", &[]),
            ("Loloi", &[]),
        ],
        features: &["Washable", "Shag", "Vintage", "Modern"],
        specs: &[("dimensions", &["3 x 5 ft", "5 x 7 ft", "8 x 10 ft"], "")],
        materials: &["wool", "polypropylene", "cotton", "jute"],
        colors: ALL, titles: SPEC_LAST,
        blurb: "An area rug for the living room or bedroom, soft underfoot and easy to clean.",
        ..BASE
    },
    Kind {
        noun: "Bed Pillow", kind: "pillow", code: "BP", dollars: (19, 129), grams: (600, 1_500),
        makers: &[
            ("Coop Home Goods", &["Original"]),
            ("Tempur-Pedic", &["TEMPUR-Cloud"]),
            ("Casper", &["Original"]),
            ("Brooklinen", &["Down"]),
        ],
        features: &["", "Memory Foam", "Down Alternative", "Cooling"],
        specs: &[("bed size", &["Standard", "Queen", "King"], "")],
        materials: &["memory foam", "down", "polyester"],
        colors: &["white"], titles: SPEC_LAST,
        blurb: "A bed pillow that keeps its shape for side, back and stomach sleepers.",
        ..BASE
    },
    Kind {
        noun: "Candle", kind: "candle", code: "CA", dollars: (9, 39), grams: (300, 700),
        makers: &[
            ("Yankee Candle", &["Balsam and Cedar", "Clean Cotton", "Pink Sands"]),
            ("Bath and Body Works", &["Mahogany Teakwood", "Champagne Toast"]),
            ("Voluspa", &["Baltic Amber"]),
            ("Homesick", &[]),
        ],
        features: &["Scented", "3-Wick", "Jar"],
        specs: &[("weight", &["8 oz", "14.5 oz", "22 oz"], "")],
        materials: &["soy wax", "paraffin wax"],
        colors: &["white", "red", "orange", "green", "blue"], titles: SPEC_LAST,
        blurb: "A scented candle that fills a room, with up to 60 hours of burn time.",
        ..BASE
    },
];

#[rustfmt::skip]
const OUTDOOR: &[Kind] = &[
    Kind {
        noun: "Tent", kind: "tent", code: "TN", dollars: (79, 699), grams: (1_200, 9_000),
        makers: &[
            ("Coleman", &["Sundome", "Skydome"]),
            ("REI Co-op", &["Half Dome", "Trail Hut"]),
            ("Big Agnes", &["Copper Spur"]),
            ("MSR", &["Hubba Hubba"]),
            ("Kelty", &["Wireless"]),
            ("Marmot", &["Tungsten"]),
        ],
        features: &["Backpacking", "Camping", "Instant", "Dome"],
        specs: &[("sleeps", &["1 person", "2 person", "4 person", "6 person"], "")],
        materials: &["nylon", "polyester"],
        colors: BRIGHT, titles: SPEC_LAST,
        blurb: "A tent that pitches in minutes, with a rainfly and two doors.",
        ..BASE
    },
    Kind {
        noun: "Sleeping Bag", kind: "sleeping bag", code: "SB", dollars: (49, 449), grams: (900, 2_500),
        makers: &[
            ("Coleman", &["Brazos"]),
            ("Kelty", &["Cosmic"]),
            ("The North Face", &["Eco Trail"]),
            ("REI Co-op", &["Magma", "Trailbreak"]),
            ("Marmot", &["Trestles"]),
        ],
        features: &["", "Mummy", "Rectangular", "Backpacking"],
        specs: &[("temperature", &["0 degree", "15 degree", "20 degree", "30 degree"], "")],
        materials: &["down", "synthetic"],
        colors: BRIGHT, titles: SPEC_LAST, sizes: REGULAR_LONG,
        blurb: "A sleeping bag that packs small and keeps warm on cold nights.",
        ..BASE
    },
    Kind {
        noun: "Backpack", kind: "backpack", code: "BP", dollars: (49, 349), grams: (600, 2_200),
        makers: &[
            ("Osprey", &["Atmos AG", "Talon", "Farpoint"]),
            ("The North Face", &["Borealis", "Recon"]),
            ("Patagonia", &["Refugio"]),
            ("Deuter", &["Futura"]),
            ("Gregory", &["Baltoro", "Zulu"]),
            ("Herschel", &["Little America"]),
        ],
        features: &["Hiking", "Travel", "Laptop", ""],
        specs: &[("capacity", &["22 l", "30 l", "40 l", "65 l"], "")],
        materials: &["nylon", "polyester"],
        colors: ALL, titles: SPEC_LAST, sizes: &[&["one size"], &["S/M", "M/L"]],
        blurb: "A backpack with a padded back panel, hip belt and pockets for a water bottle.",
        ..BASE
    },
    Kind {
        noun: "Headlamp", kind: "headlamp", code: "HL", dollars: (19, 99), grams: (50, 150),
        makers: &[
            ("Black Diamond", &["Spot 400", "Storm 500-R"]),
            ("Petzl", &["Actik Core", "Tikka"]),
            ("Fenix", &["HM65R"]),
            ("Nitecore", &["NU25"]),
        ],
        features: &["", "Rechargeable", "Waterproof"],
        specs: &[("brightness", &["300 lumens", "400 lumens", "500 lumens"], "")],
        colors: BRIGHT, titles: SPEC_LAST,
        blurb: "A headlamp with a red night mode and a beam that reaches far down the trail.",
        ..BASE
    },
    Kind {
        noun: "Camping Stove", kind: "camping stove", code: "CS", dollars: (39, 249), grams: (200, 5_000),
        makers: &[
            ("Jetboil", &["Flash", "MiniMo"]),
            ("MSR", &["PocketRocket 2", "WindBurner"]),
            ("Coleman", &["Classic"]),
            ("Camp Chef", &["Everest 2X"]),
            ("Solo Stove", &["Lite"]),
        ],
        features: &["Backpacking", "2-Burner", "Propane", ""],
        materials: &["stainless steel", "aluminium"],
        colors: BRIGHT, titles: SPEC_LAST,
        blurb: "A camping stove that boils water in minutes, even in the wind.",
        ..BASE
    },
    Kind {
        noun: "Water Filter", kind: "water filter", code: "WF", dollars: (19, 99), grams: (60, 400),
        makers: &[
            ("Sawyer", &["Squeeze", "Mini"]),
            ("LifeStraw", &["Personal", "Peak Series"]),
            ("Katadyn", &["BeFree"]),
            ("MSR", &["Guardian"]),
            ("Grayl", &["GeoPress"]),
        ],
        features: &["", "Portable", "Backpacking"],
        colors: BRIGHT, titles: SPEC_LAST,
        blurb: "A portable water filter that removes bacteria and protozoa from streams and lakes.",
        ..BASE
    },
    Kind {
        noun: "Cooler", kind: "cooler", code: "CL", dollars: (39, 399), grams: (2_000, 12_000),
        makers: &[
            ("YETI", &["Tundra", "Roadie", "Hopper Flip"]),
            ("Coleman", &["Xtreme"]),
            ("Igloo", &["MaxCold"]),
            ("RTIC", &[]),
            ("Pelican", &["Elite"]),
        ],
        features: &["Hard", "Soft", "Wheeled", ""],
        specs: &[("capacity", &["12 qt", "24 qt", "45 qt", "65 qt"], "")],
        colors: ALL, titles: SPEC_LAST,
        blurb: "A cooler that keeps ice for days, for camping, fishing and the beach.",
        ..BASE
    },
    Kind {
        noun: "Camping Chair", kind: "camping chair", code: "CC", dollars: (29, 179), grams: (1_000, 4_000),
        makers: &[
            ("Coleman", &[]),
            ("REI Co-op", &["Camp X"]),
            ("Helinox", &["Chair One"]),
            ("ALPS Mountaineering", &[]),
            ("Kijaro", &["Dual Lock"]),
        ],
        features: &["Folding", "Lightweight", "Portable"],
        materials: &["aluminium", "steel", "polyester"],
        colors: BRIGHT, titles: SPEC_LAST,
        blurb: "A camping chair with a cup holder that folds into its own carry bag.",
        ..BASE
    },
];

#[rustfmt::skip]
const FITNESS: &[Kind] = &[
    Kind {
        noun: "Yoga Mat", kind: "yoga mat", code: "YM", dollars: (19, 139), grams: (1_000, 3_500),
        makers: &[
            ("Manduka", &["PRO", "PROlite"]),
            ("Lululemon", &["The Mat"]),
            ("Gaiam", &["Premium", "Essentials"]),
            ("Liforme", &[]),
            ("JadeYoga", &[]),
        ],
        features: &["", "Non-Slip", "Extra Thick"],
        specs: &[("thickness", &["4mm", "5mm", "6mm", "10mm"], "")],
        materials: &["natural rubber", "pvc", "tpe", "cork"],
        colors: ALL, titles: SPEC_LAST, sizes: STANDARD_LARGE,
        blurb: "A yoga mat with a grippy surface and cushioning for yoga, pilates and stretching.",
        ..BASE
    },
    Kind {
        noun: "Dumbbell Set", kind: "dumbbell set", code: "DB", dollars: (49, 699), grams: (10_000, 25_000),
        makers: &[
            ("Bowflex", &["SelectTech 552", "SelectTech 1090"]),
            ("CAP Barbell", &[]),
            ("PowerBlock", &["Elite"]),
            ("Amazon Basics", &[]),
            ("Rogue", &[]),
        ],
        features: &["Adjustable", "Hex", "Neoprene"],
        specs: &[("weight", &["5-25 lb", "5-52.5 lb", "10-90 lb"], "")],
        materials: &["cast iron", "steel", "neoprene"],
        colors: &["black", "grey", "red"], titles: SPEC_LAST,
        blurb: "A dumbbell set for strength training at home, with a rack or a tray.",
        ..BASE
    },
    Kind {
        noun: "Running Shoes", kind: "running shoes", code: "RS", dollars: (89, 199), grams: (250, 350),
        makers: &[
            ("Nike", &["Pegasus 41", "Vomero 17", "Invincible 3"]),
            ("Adidas", &["Ultraboost 5", "Adizero SL"]),
            ("Brooks", &["Ghost 16", "Glycerin 21", "Adrenaline GTS 24"]),
            ("Hoka", &["Clifton 9", "Bondi 8"]),
            ("Asics", &["Gel-Kayano 31", "Gel-Nimbus 26"]),
            ("New Balance", &["Fresh Foam 1080v14"]),
        ],
        features: &["", "Road", "Trail", "Neutral", "Stability"],
        colors: ALL, titles: LINED, sizes: SHOES,
        blurb: "Running shoes with a cushioned midsole and a breathable upper for daily miles.",
        ..BASE
    },
    Kind {
        noun: "Jump Rope", kind: "jump rope", code: "JR", dollars: (9, 59), grams: (150, 400),
        makers: &[
            ("Crossrope", &["Get Lean", "Get Strong"]),
            ("Rogue", &["SR-1"]),
            ("WOD Nation", &[]),
        ],
        features: &["Speed", "Weighted", "Adjustable"],
        colors: ALL, titles: SPEC_LAST,
        blurb: "A jump rope with smooth bearings and comfortable handles for cardio workouts.",
        ..BASE
    },
    Kind {
        noun: "Kettlebell", kind: "kettlebell", code: "KB", dollars: (29, 149), grams: (6_000, 24_000),
        makers: &[
            ("Rogue", &[]),
            ("CAP Barbell", &[]),
            ("Kettlebell Kings", &[]),
            ("Bowflex", &["SelectTech 840"]),
        ],
        features: &["", "Cast Iron", "Competition", "Adjustable"],
        specs: &[("weight", &["15 lb", "25 lb", "35 lb", "53 lb"], "")],
        materials: &["cast iron", "steel"],
        colors: &["black", "red", "blue", "grey"], titles: SPEC_LAST,
        blurb: "A kettlebell with a wide handle for swings, squats and presses.",
        ..BASE
    },
    Kind {
        noun: "Foam Roller", kind: "foam roller", code: "FR", dollars: (14, 59), grams: (300, 900),
        makers: &[
            ("TriggerPoint", &["GRID"]),
            ("LuxFit", &[]),
            ("Amazon Basics", &[]),
            ("Hyperice", &["Vyper 3"]),
        ],
        features: &["", "High-Density", "Textured", "Vibrating"],
        specs: &[("length", &["12 inch", "18 inch", "36 inch"], "")],
        materials: &["eva foam", "epp foam"],
        colors: ALL, titles: SPEC_LAST,
        blurb: "A foam roller for muscle recovery and mobility after workouts.",
        ..BASE
    },
    Kind {
        noun: "Massage Gun", kind: "massage gun", code: "MG", dollars: (79, 399), grams: (600, 1_400),
        makers: &[
            ("Theragun", &["Prime", "Mini", "Pro"]),
            ("Hyperice", &["Hypervolt Go 2", "Hypervolt 2 Pro"]),
            ("Renpho", &[]),
        ],
        features: &["", "Percussion", "Cordless"],
        colors: &["black", "grey", "white"], titles: LINED,
        blurb: "A percussion massage gun with several heads and speeds to ease sore muscles.",
        ..BASE
    },
    Kind {
        noun: "Resistance Bands", kind: "resistance bands", code: "RB", dollars: (9, 49), grams: (200, 600),
        makers: &[
            ("Fit Simplify", &[]),
            ("TheraBand", &[]),
            ("Bodylastics", &[]),
            ("Amazon Basics", &[]),
        ],
        features: &["", "Loop", "Fabric"],
        specs: &[("pieces", &["5 pieces", "11 pieces"], "")],
        materials: &["latex", "fabric"],
        colors: ALL, titles: SPEC_LAST,
        blurb: "A set of resistance bands from light to heavy for strength and physical therapy.",
        ..BASE
    },
    Kind {
        noun: "Water Bottle", kind: "water bottle", code: "WB", dollars: (19, 49), grams: (300, 700),
        makers: &[
            ("Hydro Flask", &["Wide Mouth", "Standard Mouth"]),
            ("Stanley", &["Quencher H2.0", "IceFlow"]),
            ("YETI", &["Rambler"]),
            ("Nalgene", &["Wide Mouth"]),
            ("Owala", &["FreeSip"]),
        ],
        features: &["Insulated", "Stainless Steel", ""],
        specs: &[("capacity", &["24 oz", "32 oz", "40 oz"], "")],
        materials: &["stainless steel", "plastic"],
        colors: ALL, titles: SPEC_LAST,
        blurb: "A water bottle that keeps drinks cold for 24 hours and does not leak.",
        ..BASE
    },
];

#[rustfmt::skip]
const TOYS: &[Kind] = &[
    Kind {
        noun: "Building Blocks", kind: "building blocks", code: "BB", dollars: (19, 199), grams: (300, 3_000),
        makers: &[
            ("LEGO", &["Classic", "City", "Technic", "Creator 3in1", "Star Wars", "Duplo"]),
            ("Mega Bloks", &["First Builders"]),
            ("Magna-Tiles", &["Classic"]),
            ("Melissa and Doug", &[]),
        ],
        features: &["", "Creative", "Starter"],
        specs: &[("pieces", &["100 pieces", "250 pieces", "500 pieces", "790 pieces", "1500 pieces"], "")],
        materials: &["plastic", "wood"],
        colors: BRIGHT,
        titles: &["{b} {l} {f} {n} {s}", "{b} {l} {s} {f} {n}, {c}", "{b} {l} {f} {n} Set, {s}"],
        blurb: "A building blocks set for creative play, compatible with other bricks of the brand.",
        ..BASE
    },
    Kind {
        noun: "Puzzle", kind: "puzzle", code: "PZ", dollars: (14, 39), grams: (500, 1_200),
        makers: &[
            ("Ravensburger", &["World Map", "Starry Night", "Disney Castle"]),
            ("Buffalo Games", &["Cats", "National Parks"]),
            ("Cobble Hill", &["Garden Path"]),
            ("Galison", &["Library"]),
            ("Springbok", &["Americana"]),
        ],
        features: &["Jigsaw", ""],
        specs: &[("pieces", &["300 pieces", "500 pieces", "1000 pieces", "2000 pieces"], "")],
        colors: BRIGHT,
        titles: &["{b} {l} {s} {f} {n}", "{b} {l} {f} {n}, {s}"],
        blurb: "A jigsaw puzzle for adults and families, with a poster of the picture in the box.",
        ..BASE
    },
    Kind {
        noun: "Board Game", kind: "board game", code: "BG", dollars: (19, 59), grams: (800, 2_000),
        makers: &[
            ("Hasbro", &["Monopoly", "Clue", "Scrabble", "Risk", "Trouble"]),
            ("Catan Studio", &["Catan"]),
            ("Days of Wonder", &["Ticket to Ride"]),
            ("Ravensburger", &["Labyrinth"]),
            ("Z-Man Games", &["Pandemic", "Carcassonne"]),
        ],
        features: &["", "Family", "Strategy"],
        specs: &[("players", &["2-4 players", "2-6 players", "3-4 players"], "")],
        colors: BRIGHT,
        titles: &["{b} {l} {f} {n}, {s}", "{b} {l} {f} {n} for {s}"],
        blurb: "A board game for family game night, quick to learn and fun to replay.",
        ..BASE
    },
    Kind {
        noun: "Plush Bear", kind: "plush bear", code: "PB", dollars: (14, 79), grams: (150, 800),
        makers: &[
            ("Jellycat", &["Bartholomew", "Bashful"]),
            ("Gund", &["Philbin", "Tinsel"]),
            ("Build-A-Bear", &["Cuddly Brown"]),
            ("Steiff", &["Classic"]),
        ],
        features: &["Teddy", "Soft", ""],
        specs: &[("height", &["8 inch", "12 inch", "18 inch"], "")],
        materials: &["polyester", "cotton", "mohair"],
        colors: &["orange", "white", "grey", "blue"], titles: SPEC_LAST,
        blurb: "A soft plush teddy bear to cuddle, safe from birth.",
        ..BASE
    },
    Kind {
        noun: "Racing Car", kind: "racing car", code: "RC", dollars: (19, 399), grams: (200, 3_000),
        makers: &[
            ("Traxxas", &["Slash", "Rustler"]),
            ("Hot Wheels", &["Monster Trucks", "Track Builder"]),
            ("Carrera", &["Digital 132"]),
            ("Maisto", &["Tech"]),
            ("Bburago", &["Race"]),
        ],
        features: &["Remote Control", "Die-Cast", "RC", "Electric"],
        specs: &[("top speed", &["10 mph", "20 mph", "30 mph", "60 mph"], "")],
        colors: BRIGHT, titles: SPEC_LAST,
        blurb: "A racing car toy that is fast and tough, with a rechargeable battery.",
        ..BASE
    },
    Kind {
        noun: "Kite", kind: "kite", code: "KT", dollars: (14, 99), grams: (150, 600),
        makers: &[
            ("Prism", &["Synapse", "Zenith"]),
            ("HQ Kites", &["Symphony"]),
            ("In the Breeze", &[]),
            ("Gomberg", &[]),
        ],
        features: &["Delta", "Stunt", "Diamond", "Parafoil"],
        specs: &[("wingspan", &["36 inch", "48 inch", "60 inch"], "")],
        materials: &["ripstop nylon", "polyester"],
        colors: BRIGHT, titles: SPEC_LAST,
        blurb: "A kite that flies in light wind, with line and a winder included.",
        ..BASE
    },
    Kind {
        noun: "Doll", kind: "doll", code: "DO", dollars: (14, 149), grams: (200, 1_500),
        makers: &[
            ("Mattel", &["Barbie Fashionistas", "Barbie Dreamtopia", "Polly Pocket"]),
            ("American Girl", &["Truly Me"]),
            ("MGA", &["LOL Surprise", "Rainbow High"]),
            ("Corolle", &["Mon Grand Poupon"]),
            ("Melissa and Doug", &["Mine to Love"]),
        ],
        features: &["", "Fashion", "Baby"],
        specs: &[("height", &["6 inch", "12 inch", "18 inch"], "")],
        colors: BRIGHT, titles: SPEC_LAST,
        blurb: "A doll with clothes and accessories for imaginative play.",
        ..BASE
    },
    Kind {
        noun: "Action Figure", kind: "action figure", code: "AF", dollars: (9, 49), grams: (100, 500),
        makers: &[
            ("Hasbro", &["Marvel Legends", "Star Wars The Black Series", "Transformers"]),
            ("Mattel", &["WWE Elite", "Masters of the Universe"]),
            ("McFarlane Toys", &["DC Multiverse"]),
            ("Funko", &["Pop"]),
        ],
        features: &["", "Collectible", "Poseable"],
        specs: &[("height", &["4 inch", "6 inch", "12 inch"], "")],
        colors: BRIGHT, titles: SPEC_LAST,
        blurb: "A poseable action figure with accessories, for play and display.",
        ..BASE
    },
];

#[rustfmt::skip]
const GARDEN: &[Kind] = &[
    Kind {
        noun: "Garden Hose", kind: "garden hose", code: "GH", dollars: (24, 129), grams: (2_000, 8_000),
        makers: &[
            ("Flexzilla", &[]),
            ("Gardena", &["Comfort FLEX"]),
            ("Zero-G", &[]),
            ("Teknor Apex", &[]),
        ],
        features: &["", "Expandable", "Heavy-Duty", "Kink-Free"],
        specs: &[("length", &["25 ft", "50 ft", "75 ft", "100 ft"], "")],
        materials: &["rubber", "vinyl", "hybrid polymer"],
        colors: &["green", "blue", "black", "orange"], titles: SPEC_LAST,
        blurb: "A garden hose that does not kink, with brass fittings and a spray nozzle.",
        ..BASE
    },
    Kind {
        noun: "Pruning Shears", kind: "pruning shears", code: "PS", dollars: (14, 69), grams: (200, 300),
        makers: &[
            ("Felco", &["F-2", "F-6"]),
            ("Fiskars", &["PowerGear2", "Traditional"]),
            ("Corona", &["ClassicCUT"]),
        ],
        features: &["Bypass", "Anvil", "Ratchet"],
        materials: &["steel", "stainless steel"],
        colors: &["red", "orange", "black"], titles: SPEC_LAST,
        blurb: "Pruning shears with a sharp blade that cuts branches cleanly without crushing them.",
        ..BASE
    },
    Kind {
        noun: "Watering Can", kind: "watering can", code: "WC", dollars: (14, 59), grams: (400, 1_500),
        makers: &[
            ("Haws", &["Practican"]),
            ("Bloem", &[]),
            ("Behrens", &[]),
        ],
        features: &["", "Long Spout", "Indoor"],
        specs: &[("capacity", &["0.5 gal", "1 gal", "2 gal"], "")],
        materials: &["galvanized steel", "plastic"],
        colors: ALL, titles: SPEC_LAST,
        blurb: "A watering can with a removable rose for gentle watering of seedlings.",
        ..BASE
    },
    Kind {
        noun: "Garden Gloves", kind: "garden gloves", code: "GG", dollars: (9, 29), grams: (80, 150),
        makers: &[
            ("Atlas", &["Nitrile Touch"]),
            ("Pine Tree Tools", &["Bamboo"]),
            ("Wells Lamont", &[]),
            ("Firm Grip", &[]),
        ],
        features: &["", "Thorn-Proof", "Leather", "Waterproof"],
        materials: &["nitrile", "leather", "bamboo", "cotton"],
        colors: ALL, titles: SPEC_LAST, sizes: S_M_L,
        blurb: "Garden gloves with a grippy coating that keep hands dry and protected.",
        ..BASE
    },
    Kind {
        noun: "Lawn Mower", kind: "lawn mower", code: "LM", dollars: (199, 899), grams: (15_000, 25_000),
        makers: &[
            ("Greenworks", &[]),
            ("EGO", &["Power Plus"]),
            ("Honda", &["HRN216"]),
            ("Toro", &["Recycler"]),
            ("Ryobi", &[]),
        ],
        features: &["Cordless", "Self-Propelled", "Push", "Mulching"],
        specs: &[("cutting width", &["16 inch", "20 inch", "21 inch"], "")],
        colors: &["green", "red", "orange", "black"], titles: SPEC_LAST,
        blurb: "A lawn mower that mulches, bags or side discharges, with height adjustment.",
        ..BASE
    },
    Kind {
        noun: "Bird Feeder", kind: "bird feeder", code: "BF", dollars: (14, 79), grams: (400, 2_000),
        makers: &[
            ("Droll Yankees", &[]),
            ("Squirrel Buster", &["Plus", "Standard"]),
            ("Perky-Pet", &[]),
            ("Birds Choice", &[]),
        ],
        features: &["Hanging", "Squirrel-Proof", "Window", "Tube"],
        materials: &["metal", "plastic", "cedar"],
        colors: &["green", "red", "black", "white"], titles: SPEC_LAST,
        blurb: "A bird feeder for seed that is easy to fill and to clean.",
        ..BASE
    },
    Kind {
        noun: "Leaf Blower", kind: "leaf blower", code: "LB", dollars: (79, 399), grams: (2_000, 6_000),
        makers: &[
            ("EGO", &["Power Plus"]),
            ("DeWalt", &["20V Max"]),
            ("Ryobi", &["40V"]),
            ("Greenworks", &[]),
            ("Makita", &["18V LXT"]),
        ],
        features: &["Cordless", "Brushless Cordless", "Handheld"],
        specs: &[("air speed", &["120 mph", "180 mph", "200 mph"], "")],
        colors: &["green", "orange", "black"], titles: SPEC_LAST,
        blurb: "A leaf blower that clears leaves and grass clippings from lawns and driveways.",
        ..BASE
    },
    Kind {
        noun: "Grill", kind: "grill", code: "GR", dollars: (199, 1_199), grams: (15_000, 25_000),
        makers: &[
            ("Weber", &["Spirit E-310", "Genesis E-325s", "Traveler"]),
            ("Traeger", &["Pro 575", "Ironwood"]),
            ("Char-Broil", &["Performance"]),
            ("Napoleon", &["Rogue"]),
            ("Blackstone", &[]),
        ],
        features: &["", "Outdoor", "Backyard"],
        specs: &[("cooking area", &["360 sq in", "450 sq in", "575 sq in", "780 sq in"], "")],
        colors: &["black", "grey", "silver", "red"], titles: SPEC_LAST,
        blurb: "A grill for the backyard with even heat for burgers, steaks and vegetables.",
        ..BASE
    },
];

/// The demo departments: slug, name, product types.
const CATEGORIES: [(&str, &str, &[Kind]); 16] = [
    ("phones", "Phones", PHONES),
    ("laptops", "Laptops", LAPTOPS),
    ("tvs", "TVs", TVS),
    ("audio", "Audio", AUDIO),
    ("computers", "Computers", COMPUTERS),
    ("tablets", "Tablets", TABLETS),
    ("wearables", "Wearables", WEARABLES),
    ("cameras", "Cameras", CAMERAS),
    ("gaming", "Gaming", GAMING),
    ("appliances", "Appliances", APPLIANCES),
    ("kitchen", "Kitchen", KITCHEN),
    ("home", "Home", HOME),
    ("outdoor", "Outdoor", OUTDOOR),
    ("fitness", "Fitness", FITNESS),
    ("toys", "Toys", TOYS),
    ("garden", "Garden", GARDEN),
];

/// A small, fast, deterministic generator (SplitMix64): the demo data is the same on every
/// machine for a seed.
#[derive(Debug, Clone)]
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// A fraction in `[0, 1)`.
    fn fraction(&mut self) -> f64 {
        (self.next() % 10_000) as f64 / 10_000.0
    }
}

/// The categories of the demo catalog.
pub fn categories() -> Vec<Category> {
    CATEGORIES
        .iter()
        .map(|(slug, name, _)| {
            Category::new(CategoryId::new(*slug).expect("demo slugs are valid"), *name)
        })
        .collect()
}

/// Every `type` attribute value of the demo catalog, once each, in catalog order
/// (`smartphone`, `phone case`, ..., `laptop`, ..., `tv`, ...): for building query sets.
pub fn product_types() -> Vec<&'static str> {
    let mut types: Vec<&'static str> = Vec::new();
    for kind in CATEGORIES.iter().flat_map(|(_, _, kinds)| kinds.iter()) {
        if !types.contains(&kind.kind) {
            types.push(kind.kind);
        }
    }
    types
}

/// What a product is, as a shopper calls it: its `type` attribute (`smartphone`, `laptop`,
/// `tv`, `air fryer`...). Every demo product has one; a product from elsewhere may not. A
/// search for a type can be judged by it: a hit whose type is the one asked for is relevant.
pub fn product_type(product: &Product) -> Option<&str> {
    product.attributes.get("type").map(String::as_str)
}

/// One demo product and the units of stock of each of its variants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoProduct {
    /// The product.
    pub product: Product,
    /// Units on hand per variant, in variant order (some are zero: out of stock).
    pub stock: Vec<u32>,
}

impl From<DemoProduct> for ImportItem {
    /// The product with its units on hand, for [`crate::Storefront::import`].
    fn from(item: DemoProduct) -> ImportItem {
        let skus: Vec<Sku> = item
            .product
            .variants
            .iter()
            .map(|v| v.sku.clone())
            .collect();
        skus.into_iter()
            .zip(item.stock)
            .fold(ImportItem::new(item.product), |i, (sku, units)| {
                i.with_stock(sku, units)
            })
    }
}

/// The words of one product, for its title and description.
struct Parts<'a> {
    kind: &'a Kind,
    brand: &'a str,
    line: &'a str,
    feature: &'a str,
    /// The chosen value of each spec.
    specs: [usize; MAX_SPECS],
    color: &'a str,
    model: usize,
}

impl Parts<'_> {
    /// Whether a placeholder stands for nothing.
    fn is_empty(&self, key: char) -> bool {
        match key {
            'l' => self.line.is_empty(),
            'f' => self.feature.is_empty(),
            's' => self.kind.specs.is_empty(),
            _ => false,
        }
    }

    /// Writes what a placeholder stands for.
    fn write(&self, key: char, out: &mut String) {
        match key {
            'b' => out.push_str(self.brand),
            'l' => out.push_str(self.line),
            'f' => out.push_str(self.feature),
            'n' => out.push_str(self.kind.noun),
            'c' => {
                let mut chars = self.color.chars();
                if let Some(first) = chars.next() {
                    out.push(first.to_ascii_uppercase());
                    out.push_str(chars.as_str());
                }
            }
            's' => self.write_specs(out),
            'm' => self.write_model(out),
            _ => {}
        }
    }

    /// The specs as titles write them (`16GB RAM 512GB SSD`).
    fn write_specs(&self, out: &mut String) {
        for (i, ((_, values, suffix), pick)) in self.kind.specs.iter().zip(self.specs).enumerate() {
            if i > 0 {
                out.push(' ');
            }
            out.push_str(values[pick]);
            out.push_str(suffix);
        }
    }

    /// The model code (`HD4646`).
    fn write_model(&self, out: &mut String) {
        let _ = write!(out, "{}{}", self.kind.code, self.model);
    }

    /// The title from a template: its words, without those whose placeholders are all empty.
    fn title(&self, template: &str) -> String {
        let mut out = String::with_capacity(template.len() + 48);
        for word in template.split(' ') {
            let mut keys = word.split('{').skip(1).filter_map(|s| s.chars().next());
            let first = keys.next();
            if first.is_some_and(|k| self.is_empty(k)) && keys.all(|k| self.is_empty(k)) {
                continue;
            }
            if !out.is_empty() {
                out.push(' ');
            }
            let mut pieces = word.split('{');
            out.push_str(pieces.next().unwrap_or(""));
            for piece in pieces {
                let mut chars = piece.chars();
                if let Some(key) = chars.next() {
                    self.write(key, &mut out);
                }
                out.push_str(chars.as_str().strip_prefix('}').unwrap_or(chars.as_str()));
            }
        }
        out
    }

    /// One or two plain sentences: brand, line or model, color, specs, type, material, and
    /// the type's blurb.
    fn description(&self, material: Option<&str>) -> String {
        let mut out = String::with_capacity(160 + self.kind.blurb.len());
        out.push_str("The ");
        out.push_str(self.brand);
        out.push(' ');
        if self.line.is_empty() {
            self.write_model(&mut out);
        } else {
            out.push_str(self.line);
        }
        // `Headphones` and `Running Shoes` are plural.
        let noun = self.kind.noun;
        let plural = noun.ends_with('s') && !noun.ends_with("ss");
        let vowel = self.color.starts_with(['a', 'e', 'i', 'o', 'u']);
        out.push_str(match (plural, vowel) {
            (true, _) => " are ",
            (false, true) => " is an ",
            (false, false) => " is a ",
        });
        out.push_str(self.color);
        out.push(' ');
        if !self.kind.specs.is_empty() {
            self.write_specs(&mut out);
            out.push(' ');
        }
        // The noun in running text: `air fryer`, but `OLED TV` and `E-Reader` as written.
        for (i, word) in noun.split(' ').enumerate() {
            if i > 0 {
                out.push(' ');
            }
            let mut chars = word.chars();
            match chars.next() {
                Some(first) if chars.as_str().chars().all(|c| !c.is_ascii_uppercase()) => {
                    out.push(first.to_ascii_lowercase());
                    out.push_str(chars.as_str());
                }
                _ => out.push_str(word),
            }
        }
        // A Chromebook is a laptop: the type too, when the noun does not say it.
        let (noun, kind) = (noun.as_bytes(), self.kind.kind.as_bytes());
        if !noun
            .windows(kind.len())
            .any(|w| w.eq_ignore_ascii_case(kind))
        {
            out.push(' ');
            out.push_str(self.kind.kind);
        }
        if let Some(material) = material {
            out.push_str(" made of ");
            out.push_str(material);
        }
        out.push_str(". ");
        out.push_str(self.kind.blurb);
        out
    }
}

/// `n` demo products for a seed. Product `i` is the same for the same seed whatever `n` is.
pub fn catalog(n: usize, seed: u64) -> impl Iterator<Item = DemoProduct> {
    let epoch: DateTime<Utc> = Utc
        .with_ymd_and_hms(2025, 1, 1, 0, 0, 0)
        .single()
        .expect("valid date");
    (0..n).map(move |i| {
        let mut rng = SplitMix(seed ^ (i as u64).wrapping_mul(0x2545_F491_4F6C_DD1D));
        let (slug, _, kinds) = CATEGORIES[rng.below(CATEGORIES.len())];
        let kind = rng.pick(kinds);
        let (brand, lines) = *rng.pick(kind.makers);
        let line = if lines.is_empty() {
            ""
        } else {
            *rng.pick(lines)
        };
        let feature = *rng.pick(kind.features);
        let mut specs = [0; MAX_SPECS];
        // How far up its range each spec is, 0 to 1: bigger specs cost more and weigh more.
        let mut rank = 0.0;
        for ((_, values, _), pick) in kind.specs.iter().zip(&mut specs) {
            *pick = rng.below(values.len());
            if values.len() > 1 {
                rank += *pick as f64 / (values.len() - 1) as f64 / kind.specs.len() as f64;
            }
        }
        let color = *rng.pick(kind.colors);
        let material = if kind.materials.is_empty() {
            None
        } else {
            Some(*rng.pick(kind.materials))
        };
        let parts = Parts {
            kind,
            brand,
            line,
            feature,
            specs,
            color,
            model: rng.below(9_000) + 1_000,
        };
        let title = parts.title(rng.pick::<&str>(kind.titles));
        let description = parts.description(material);

        // Prices over the type's range, most of them low, higher for bigger specs, in dollars
        // ending in 9 from $100 (1,299.99), with 99 cents.
        let (low, high) = (f64::from(kind.dollars.0), f64::from(kind.dollars.1));
        let t = 0.65 * rng.fraction() + 0.35 * rank;
        let mut dollars = (low * (high / low).powf(t)) as i64;
        if dollars >= 100 {
            dollars = dollars / 10 * 10 + 9;
        }
        let cents = dollars * 100 + 99;
        let (light, heavy) = kind.grams;
        let grams = light + (f64::from(heavy - light) * (0.5 * rank + 0.5 * rng.fraction())) as u32;
        let sizes = *rng.pick(kind.sizes);
        let mut variants = Vec::with_capacity(sizes.len());
        let mut stock = Vec::with_capacity(sizes.len());
        for (v, size) in sizes.iter().enumerate() {
            variants.push(
                Variant::new(
                    Sku::new(format!("D{seed:x}-{i}-{v}")).expect("demo skus are valid"),
                    Money::from_minor(cents + 500 * v as i64, Currency::USD),
                )
                .with_option("size", *size)
                .with_profile(ItemProfile {
                    weight_grams: (grams + 50 * v as u32).min(MAX_GRAMS),
                    ..ItemProfile::default()
                }),
            );
            stock.push(if rng.below(10) == 0 {
                0
            } else {
                rng.below(50) as u32 + 1
            });
        }
        let id = ProductId::from_uuid(uuid::Uuid::from_u64_pair(seed, i as u64));
        let mut product = Product::new(
            id,
            title,
            CategoryId::new(slug).expect("demo slugs are valid"),
        )
        .with_description(description)
        .with_brand(brand)
        .with_attribute("type", kind.kind)
        .with_attribute("color", color);
        for ((name, values, _), pick) in kind.specs.iter().zip(specs) {
            product = product.with_attribute(*name, values[pick]);
        }
        for (name, value) in kind.extra {
            product = product.with_attribute(*name, *value);
        }
        if let Some(material) = material {
            product = product.with_attribute("material", material);
        }
        DemoProduct {
            product: product.with_variants(variants).with_created_at(
                epoch + chrono::Duration::minutes(rng.below(60 * 24 * 700) as i64),
            ),
            stock,
        }
    })
}

/// The heaviest demo variant, in grams: everything ships by parcel.
const MAX_GRAMS: u32 = 25_000;

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use super::*;

    #[test]
    fn the_demo_catalog_is_deterministic_and_valid() {
        let a: Vec<DemoProduct> = catalog(50, 7).collect();
        let b: Vec<DemoProduct> = catalog(80, 7).take(50).collect();
        assert_eq!(a, b, "product i does not depend on n");
        assert_ne!(a, catalog(50, 8).collect::<Vec<_>>());
        for d in &a {
            d.product.validate().expect("valid product");
            assert_eq!(d.stock.len(), d.product.variants.len());
        }
        let titles: HashSet<_> = a.iter().map(|d| &d.product.title).collect();
        assert!(titles.len() > 45, "titles vary");
        assert_eq!(categories().len(), 16);
        for slug in [
            "audio",
            "computers",
            "kitchen",
            "outdoor",
            "fitness",
            "home",
            "toys",
            "garden",
            "phones",
            "laptops",
            "tvs",
            "appliances",
            "cameras",
            "gaming",
        ] {
            assert!(categories().iter().any(|c| c.id.as_str() == slug), "{slug}");
        }

        // Every product has a type, a color and sensible text, prices and weights.
        let big: Vec<DemoProduct> = catalog(2_000, 7).collect();
        let mut types: HashMap<&str, usize> = HashMap::new();
        let mut panels = HashSet::new();
        for d in &big {
            let p = &d.product;
            p.validate().expect("valid product");
            let kind = product_type(p).expect("every product has a type");
            assert_eq!(kind, kind.to_lowercase(), "{}", p.title);
            *types.entry(kind).or_default() += 1;
            assert!(p.attributes.contains_key("color"), "{}", p.title);
            assert!(
                p.title
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || " .,-".contains(c)),
                "{}",
                p.title
            );
            assert!(
                !p.title.contains("  ") && !p.title.ends_with(' '),
                "{}",
                p.title
            );
            assert!(p.title.starts_with(&p.brand), "{}", p.title);
            assert!(p.description.contains(&p.brand), "{}", p.description);
            for v in &p.variants {
                assert_eq!(v.price.to_minor().expect("USD") % 100, 99);
                assert!((1..=MAX_GRAMS).contains(&v.profile.weight_grams));
                assert!(v.options.contains_key("size"));
            }
            if kind == "tv" {
                panels.insert(p.attributes["panel"].as_str());
                assert!(p.attributes.contains_key("screen"), "{}", p.title);
            }
        }
        for kind in [
            "smartphone",
            "laptop",
            "tv",
            "air fryer",
            "headphones",
            "building blocks",
            "earbuds",
            "refrigerator",
            "console",
            "kettle",
        ] {
            assert!(
                types.get(kind).copied().unwrap_or(0) >= 3,
                "{kind}: {types:?}"
            );
        }
        assert_eq!(panels, HashSet::from(["OLED", "QLED", "LED"]));
        assert!(
            big.iter().any(|d| d.product.title.contains("iPhone")),
            "iPhones"
        );
        let all_types = product_types();
        assert!(types.keys().all(|t| all_types.contains(t)));
        assert!(all_types.contains(&"smartphone") && all_types.contains(&"tv"));

        // Product types are well formed: makers, at most two specs, parcel weights.
        for (_, _, kinds) in CATEGORIES {
            for kind in kinds {
                assert!(!kind.noun.is_empty() && !kind.kind.is_empty() && !kind.makers.is_empty());
                assert!(
                    !kind.blurb.is_empty() && !kind.code.is_empty(),
                    "{}",
                    kind.noun
                );
                assert!(kind.specs.len() <= MAX_SPECS, "{}", kind.noun);
                assert!(kind.grams.0 <= kind.grams.1 && kind.grams.1 <= MAX_GRAMS);
                assert!(0 < kind.dollars.0 && kind.dollars.0 < kind.dollars.1);
            }
        }
    }
}
