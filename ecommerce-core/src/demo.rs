//! A deterministic demo catalog: realistic titles, brands, categories, prices and stock, the
//! same for the same seed, at any size (the benchmarks use 100,000 and 1,000,000 products; the
//! reference shop seeds a few hundred).

use chrono::{DateTime, TimeZone, Utc};

use crate::catalog::{Category, ItemProfile, Product, Variant};
use crate::id::{CategoryId, ProductId, Sku};
use crate::money::{Currency, Money};
use crate::storefront::ImportItem;

/// The demo categories: slug, name, and the nouns of its products.
const CATEGORIES: [(&str, &str, &[&str]); 8] = [
    (
        "audio",
        "Audio",
        &[
            "Headphones",
            "Earbuds",
            "Speaker",
            "Soundbar",
            "Turntable",
            "Microphone",
        ],
    ),
    (
        "computers",
        "Computers",
        &[
            "Laptop",
            "Keyboard",
            "Mouse",
            "Monitor",
            "Webcam",
            "Docking Station",
        ],
    ),
    (
        "kitchen",
        "Kitchen",
        &[
            "Kettle",
            "Toaster",
            "Blender",
            "Espresso Machine",
            "Chef Knife",
            "Frying Pan",
        ],
    ),
    (
        "outdoor",
        "Outdoor",
        &[
            "Tent",
            "Sleeping Bag",
            "Backpack",
            "Headlamp",
            "Camping Stove",
            "Water Filter",
        ],
    ),
    (
        "fitness",
        "Fitness",
        &[
            "Yoga Mat",
            "Dumbbell Set",
            "Running Shoes",
            "Jump Rope",
            "Kettlebell",
            "Foam Roller",
        ],
    ),
    (
        "home",
        "Home",
        &[
            "Desk Lamp",
            "Throw Blanket",
            "Office Chair",
            "Bookshelf",
            "Wall Clock",
            "Plant Pot",
        ],
    ),
    (
        "toys",
        "Toys",
        &[
            "Building Blocks",
            "Puzzle",
            "Board Game",
            "Plush Bear",
            "Racing Car",
            "Kite",
        ],
    ),
    (
        "garden",
        "Garden",
        &[
            "Hose",
            "Pruning Shears",
            "Watering Can",
            "Garden Gloves",
            "Lawn Mower",
            "Bird Feeder",
        ],
    ),
];

const BRANDS: [&str; 16] = [
    "Acme",
    "Northwind",
    "Sonic",
    "Boreal",
    "Kestrel",
    "Lumen",
    "Vertex",
    "Harbor",
    "Fjord",
    "Atlas",
    "Nimbus",
    "Pioneer",
    "Quartz",
    "Summit",
    "Tundra",
    "Zephyr",
];

const ADJECTIVES: [&str; 20] = [
    "Wireless",
    "Compact",
    "Premium",
    "Classic",
    "Ultralight",
    "Professional",
    "Portable",
    "Ergonomic",
    "Smart",
    "Rugged",
    "Deluxe",
    "Essential",
    "Stainless",
    "Foldable",
    "Quiet",
    "Vintage",
    "Modern",
    "Waterproof",
    "Heavy-Duty",
    "Eco",
];

const COLORS: [&str; 8] = [
    "black", "white", "red", "blue", "green", "grey", "orange", "silver",
];
const MATERIALS: [&str; 6] = [
    "aluminium",
    "steel",
    "cotton",
    "plastic",
    "bamboo",
    "leather",
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

/// `n` demo products for a seed. Product `i` is the same for the same seed whatever `n` is.
pub fn catalog(n: usize, seed: u64) -> impl Iterator<Item = DemoProduct> {
    let epoch: DateTime<Utc> = Utc
        .with_ymd_and_hms(2025, 1, 1, 0, 0, 0)
        .single()
        .expect("valid date");
    (0..n).map(move |i| {
        let mut rng = SplitMix(seed ^ (i as u64).wrapping_mul(0x2545_F491_4F6C_DD1D));
        let (slug, _, nouns) = CATEGORIES[rng.below(CATEGORIES.len())];
        let brand = *rng.pick(&BRANDS);
        let adjective = *rng.pick(&ADJECTIVES);
        let noun = *rng.pick(nouns);
        let model = rng.below(900) + 100;
        let title = format!("{brand} {adjective} {noun} {model}");
        let color = *rng.pick(&COLORS);
        let material = *rng.pick(&MATERIALS);
        // Prices from 5 to about 2,000, most of them low, in cents ending in 9.
        let dollars = 5.0 * (400.0f64).powf((rng.next() % 10_000) as f64 / 10_000.0);
        let cents = (dollars as i64) * 100 + 99;
        let sizes: &[&str] = match rng.below(4) {
            0 => &["S", "M", "L"],
            1 => &["standard", "large"],
            _ => &["one size"],
        };
        let mut variants = Vec::new();
        let mut stock = Vec::new();
        for (v, size) in sizes.iter().enumerate() {
            variants.push(
                Variant::new(
                    Sku::new(format!("D{seed:x}-{i}-{v}")).expect("demo skus are valid"),
                    Money::from_minor(cents + 500 * v as i64, Currency::USD),
                )
                .with_option("size", *size)
                // 150 g to 5 kg, from the price (the generator's draws stay as they were).
                .with_profile(ItemProfile {
                    weight_grams: 150 + ((cents * 7 + 311 * v as i64) % 4_850) as u32,
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
        DemoProduct {
            product: Product::new(
                id,
                title.clone(),
                CategoryId::new(slug).expect("demo slugs are valid"),
            )
            .with_description(format!(
                "The {title} is a {} {} {} from {brand}, in {color} {material}. Model {model}.",
                adjective.to_lowercase(),
                noun.to_lowercase(),
                slug,
            ))
            .with_brand(brand)
            .with_attribute("color", color)
            .with_attribute("material", material)
            .with_variants(variants)
            .with_created_at(epoch + chrono::Duration::minutes(rng.below(60 * 24 * 700) as i64)),
            stock,
        }
    })
}

#[cfg(test)]
mod tests {
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
        let titles: std::collections::HashSet<_> = a.iter().map(|d| &d.product.title).collect();
        assert!(titles.len() > 45, "titles vary");
        assert_eq!(categories().len(), 8);
    }
}
