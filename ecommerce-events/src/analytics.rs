//! The event history in date-partitioned Parquet files, and queries over it.
//!
//! A [`ParquetExporter`] appends events read from a stream (each with its sequence number in
//! that stream) to Parquet files that any engine reads as they are (DuckDB, Spark, pandas,
//! `parquet-tools`): plain columns, no blob to decode. [`daily_revenue`], [`top_skus`] and
//! [`cancelled_orders`] answer the common questions straight from the files.
//!
//! # Guarantees
//!
//! - **Each event is exported exactly once across restarts.** The exporter keeps a
//!   *watermark*, the highest sequence exported, in `dir/_watermark`. Events at or below it
//!   are skipped, so a stream redelivering a batch after a crash adds nothing. A batch becomes
//!   visible only when the watermark moves past it: files are written under a temporary name,
//!   synced and renamed into place, their directories synced, and only then is the watermark
//!   replaced (again temporary file, sync, rename, directory sync). A crash in between leaves
//!   part files whose first sequence is above the watermark; [`ParquetExporter::open`] deletes
//!   them, and the stream delivers those events again.
//! - **Queries read committed data only.** They skip part files above the watermark, so a
//!   query running beside an exporter, or after a crash before the next `open`, never sees a
//!   half-written batch.
//! - **Exact money.** Totals are stored as `Decimal128(38, 4)` and summed as decimals, never as
//!   floats.
//!
//! One directory has one exporter at a time; nothing enforces it (run the export in a single
//! process, as a durable consumer does).
//!
//! # Layout
//!
//! ```text
//! dir/
//!   _watermark                                   highest sequence exported, as decimal text
//!   events/date=2025-03-01/part-{first:020}-{last:020}.parquet
//!   order_lines/date=2025-03-01/part-{first:020}-{last:020}.parquet
//! ```
//!
//! The `date=` partitions are the UTC date of [`EventEnvelope::occurred_at`] (Hive style, so
//! engines prune on `date`). Each [`ParquetExporter::export`] call writes one file per table
//! and day it has rows for, named after the first and last sequence of that day's events in
//! the batch; the `order_lines` file of a day carries the same name as the `events` file.
//! Small batches make small files: export in batches of thousands where the stream allows.
//! Names starting with `_` or `.` are ignored by Hive-style readers, which keeps the watermark
//! and temporary files out of their way.
//!
//! # Schema
//!
//! `events`, one row per event:
//!
//! | column        | type                             | null | content                                         |
//! |---------------|----------------------------------|------|-------------------------------------------------|
//! | `seq`         | `UInt64`                         | no   | sequence in the stream the event was read from   |
//! | `event_id`    | `Utf8`                           | no   | [`EventEnvelope::id`], hyphenated UUID           |
//! | `occurred_at` | `Timestamp(Microsecond, "UTC")`  | no   | [`EventEnvelope::occurred_at`] (to the microsecond) |
//! | `day`         | `Date32`                         | no   | UTC date of `occurred_at` (the partition's date) |
//! | `event_type`  | `Utf8`                           | no   | serde name of the variant: `order_confirmed`...  |
//! | `order_id`    | `Utf8`                           | yes  | the order, for order events                      |
//! | `customer_id` | `Utf8`                           | yes  | the customer, for `order_placed` and `order_confirmed` |
//! | `total`       | `Decimal128(38, 4)`              | yes  | the order total, for `order_placed` and `order_confirmed` |
//! | `currency`    | `Utf8`                           | yes  | ISO 4217 code of `total`                         |
//! | `payload`     | `Utf8`                           | no   | the whole event as JSON, as serde writes it     |
//!
//! `order_lines`, one row per line of an `order_confirmed` event:
//!
//! | column    | type     | null | content                                |
//! |-----------|----------|------|----------------------------------------|
//! | `seq`     | `UInt64` | no   | sequence of the `order_confirmed` event |
//! | `line_no` | `UInt32` | no   | position of the line in the order, from 0 |
//! | `order_id`| `Utf8`   | no   | the order                              |
//! | `sku`     | `Utf8`   | no   | the SKU                                |
//! | `units`   | `UInt32` | no   | units sold                             |
//! | `day`     | `Date32` | no   | UTC date of the event                  |
//!
//! `total` has scale 4 for every currency: the largest minor unit of ISO 4217 (the Chilean
//! unidad de fomento, `CLF`), so every amount the shop rounds to its currency fits exactly.
//! An amount with more decimals than that is refused ([`AnalyticsError::AmountOutOfRange`])
//! rather than rounded. Event variants this module does not know yet (the enum is
//! non-exhaustive) are exported with their serde name and payload and null order columns.
//!
//! # Example
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use chrono::{NaiveDate, TimeZone, Utc};
//! use ecommerce_core::events::{DomainEvent, EventEnvelope};
//! use ecommerce_core::id::{CustomerId, EventId, OrderId, Sku};
//! use ecommerce_core::money::{Currency, Decimal, Money};
//! use ecommerce_events::analytics::{ParquetExporter, daily_revenue, top_skus};
//!
//! let dir = tempfile::tempdir()?;
//! let mut exporter = ParquetExporter::open(dir.path())?;
//!
//! // (stream sequence, event) pairs, as a durable consumer reads them.
//! let confirmed = EventEnvelope {
//!     id: EventId::new(),
//!     occurred_at: Utc.with_ymd_and_hms(2025, 3, 1, 12, 0, 0).unwrap(),
//!     event: DomainEvent::OrderConfirmed {
//!         order: OrderId::new(),
//!         customer: CustomerId::new(),
//!         lines: vec![(Sku::new("MUG-BLUE")?, 2)],
//!         total: Money::new(Decimal::new(2500, 2), Currency::EUR),
//!         cart: None,
//!     },
//! };
//! let report = exporter.export(&[(41, confirmed.clone())])?;
//! assert_eq!(report.exported, 1);
//!
//! // Redelivered after a restart: skipped.
//! let report = exporter.export(&[(41, confirmed)])?;
//! assert_eq!((report.exported, report.skipped), (0, 1));
//!
//! let day = NaiveDate::from_ymd_opt(2025, 3, 1).unwrap();
//! let revenue = daily_revenue(dir.path())?;
//! assert_eq!(revenue[&day][&Currency::EUR], Decimal::new(2500, 2));
//! assert_eq!(top_skus(dir.path(), 10)?, vec![("MUG-BLUE".to_string(), 2)]);
//! # Ok(())
//! # }
//! ```

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock};

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Decimal128Type, TimestampMicrosecondType, UInt32Type, UInt64Type,
};
use arrow_array::{
    Array, ArrayRef, ArrowPrimitiveType, Date32Array, Decimal128Array, PrimitiveArray, RecordBatch,
    StringArray, TimestampMicrosecondArray, UInt32Array, UInt64Array,
};
use arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef, TimeUnit};
use chrono::{DateTime, NaiveDate};
use ecommerce_core::events::{DomainEvent, EventEnvelope};
use ecommerce_core::money::{Currency, Decimal};
use parquet::arrow::ArrowWriter;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::Compression;
use parquet::errors::ParquetError;
use parquet::file::properties::WriterProperties;

/// Directory of the `events` table under the export directory.
pub const EVENTS_TABLE: &str = "events";
/// Directory of the `order_lines` table under the export directory.
pub const ORDER_LINES_TABLE: &str = "order_lines";
/// Name of the watermark file under the export directory.
pub const WATERMARK_FILE: &str = "_watermark";

/// Precision of the `total` column.
pub const TOTAL_PRECISION: u8 = 38;
/// Scale of the `total` column: the largest minor unit of ISO 4217.
pub const TOTAL_SCALE: i8 = 4;

/// The serde name of [`DomainEvent::OrderConfirmed`], as stored in `event_type`.
const ORDER_CONFIRMED: &str = "order_confirmed";
/// The serde name of [`DomainEvent::OrderCancelled`], as stored in `event_type`.
const ORDER_CANCELLED: &str = "order_cancelled";

/// What can go wrong exporting or querying the history.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AnalyticsError {
    /// A file or directory could not be read, written, renamed or synced.
    #[error("i/o error on {}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The Parquet library failed to write or read a file.
    #[error("parquet error on {}", path.display())]
    Parquet {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: ParquetError,
    },
    /// Arrow refused to build a record batch (a bug in the exporter's schema) or to decode one.
    #[error("arrow error")]
    Arrow(#[from] ArrowError),
    /// An event could not be serialized to JSON for the `payload` column.
    #[error("event {seq} cannot be serialized")]
    Serialize {
        /// Its stream sequence.
        seq: u64,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// An amount has more than 4 decimal places and would be rounded by `Decimal128(38, 4)`;
    /// nothing of the batch was written.
    #[error("amount {amount} of event {seq} does not fit decimal(38, 4)")]
    AmountOutOfRange {
        /// Sequence of the event.
        seq: u64,
        /// The amount.
        amount: Decimal,
    },
    /// A file under the export directory holds something this module did not write (a
    /// malformed watermark, a column of the wrong type, an unknown currency...).
    #[error("unexpected content in {}: {reason}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// A revenue sum is beyond what a decimal holds.
    #[error("revenue of {day} in {currency} overflows a decimal")]
    Overflow {
        /// The day.
        day: NaiveDate,
        /// The currency.
        currency: Currency,
    },
}

impl AnalyticsError {
    /// Whether the error comes from the file system (disk full, permissions...), as opposed
    /// to the data: retrying later may succeed.
    pub fn is_io(&self) -> bool {
        matches!(self, AnalyticsError::Io { .. })
    }
}

/// What one [`ParquetExporter::export`] call did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExportReport {
    /// Events written: those above the watermark, each sequence once.
    pub exported: usize,
    /// Events not written: at or below the watermark (already exported), or a sequence seen
    /// earlier in the same batch.
    pub skipped: usize,
    /// Rows written to `order_lines`.
    pub order_lines: usize,
    /// The files written, by final path, `events` then `order_lines` for each day in order.
    pub files: Vec<PathBuf>,
    /// The watermark after the call.
    pub watermark: u64,
}

/// Appends events to the date-partitioned Parquet history, each exactly once.
///
/// See the [module documentation](self) for the layout, the schema and the crash guarantees.
#[derive(Debug)]
pub struct ParquetExporter {
    dir: PathBuf,
    watermark: u64,
    /// A batch was started and not committed (an error mid-way): clean up before the next.
    needs_recovery: bool,
}

impl ParquetExporter {
    /// Opens (creating it if needed) the export directory `dir`, reads the watermark and
    /// deletes what a crash mid-batch left behind: part files whose first sequence is above
    /// the watermark, and temporary files. Their events are above the watermark, so the
    /// stream delivers them again.
    ///
    /// # Errors
    /// [`AnalyticsError::Io`] when the directory cannot be created, listed or cleaned;
    /// [`AnalyticsError::Corrupt`] when the watermark file is not a number.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, AnalyticsError> {
        let dir = dir.as_ref().to_path_buf();
        for table in [EVENTS_TABLE, ORDER_LINES_TABLE] {
            let path = dir.join(table);
            fs::create_dir_all(&path).map_err(io_error(&path))?;
        }
        let mut exporter = ParquetExporter {
            dir,
            watermark: 0,
            needs_recovery: true,
        };
        exporter.recover()?;
        Ok(exporter)
    }

    /// The export directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The highest sequence exported, 0 when none.
    pub fn watermark(&self) -> u64 {
        self.watermark
    }

    /// Exports the events whose sequence is above the watermark, then moves the watermark to
    /// the highest of them. `events` pairs each event with its sequence in the stream it was
    /// read from; a sequence repeated within the call is exported once (the first copy).
    ///
    /// Nothing is visible to queries until the watermark is written, which is the last step;
    /// on an error the batch is abandoned as a whole (its files are deleted before the next
    /// batch, or by the next [`open`](Self::open)), the watermark stays where it was, and the
    /// same events can be exported again.
    ///
    /// # Errors
    /// [`AnalyticsError::AmountOutOfRange`] (before anything is written) when a total has
    /// more than 4 decimal places; [`AnalyticsError::Io`] or [`AnalyticsError::Parquet`] when a
    /// file cannot be written.
    pub fn export(
        &mut self,
        events: &[(u64, EventEnvelope)],
    ) -> Result<ExportReport, AnalyticsError> {
        if self.needs_recovery {
            self.recover()?;
        }
        let batch = self.stage(events)?;
        let mut report = ExportReport {
            exported: batch.exported,
            skipped: events.len() - batch.exported,
            order_lines: batch.partitions.iter().map(|p| p.lines.len()).sum(),
            files: Vec::new(),
            watermark: self.watermark,
        };
        let Some(last) = batch.last_seq else {
            return Ok(report);
        };
        self.needs_recovery = true;
        report.files = self.write_files(&batch)?;
        self.write_watermark(last)?;
        self.watermark = last;
        self.needs_recovery = false;
        report.watermark = last;
        tracing::debug!(
            exported = report.exported,
            skipped = report.skipped,
            watermark = last,
            "analytics batch exported"
        );
        Ok(report)
    }

    /// Rereads the watermark from disk and deletes every part file above it and every
    /// temporary file. The watermark on disk is the truth: if it was renamed into place before
    /// an error, its batch is kept.
    fn recover(&mut self) -> Result<(), AnalyticsError> {
        let watermark = read_watermark(&self.dir)?;
        for table in [EVENTS_TABLE, ORDER_LINES_TABLE] {
            for partition in partitions(&self.dir.join(table))? {
                for (name, path) in list_dir(&partition.path)? {
                    let leftover = match parse_part_name(&name) {
                        Some((first, _)) => first > watermark,
                        None => name.starts_with('.') && name.ends_with(".tmp"),
                    };
                    if leftover {
                        tracing::warn!(
                            path = %path.display(),
                            watermark,
                            "deleting a file of an uncommitted analytics batch"
                        );
                        fs::remove_file(&path).map_err(io_error(&path))?;
                    }
                }
            }
        }
        let tmp = self.dir.join(format!(".{WATERMARK_FILE}.tmp"));
        match fs::remove_file(&tmp) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_error(&tmp)(e)),
        }
        self.watermark = watermark;
        self.needs_recovery = false;
        Ok(())
    }

    /// Converts the events above the watermark into rows, grouped by day. Writes nothing.
    fn stage(&self, events: &[(u64, EventEnvelope)]) -> Result<StagedBatch, AnalyticsError> {
        let mut fresh: BTreeMap<u64, &EventEnvelope> = BTreeMap::new();
        for (seq, envelope) in events {
            if *seq > self.watermark {
                fresh.entry(*seq).or_insert(envelope);
            }
        }
        let mut partitions: BTreeMap<NaiveDate, Partition> = BTreeMap::new();
        for (&seq, envelope) in &fresh {
            let day = envelope.occurred_at.date_naive();
            let partition = partitions.entry(day).or_insert_with(|| Partition {
                day,
                first: seq,
                last: seq,
                events: Vec::new(),
                lines: Vec::new(),
            });
            // `fresh` is in sequence order, so the first row of a day has its lowest sequence.
            partition.last = seq;
            stage_event(seq, envelope, partition)?;
        }
        Ok(StagedBatch {
            exported: fresh.len(),
            last_seq: fresh.last_key_value().map(|(seq, _)| *seq),
            partitions: partitions.into_values().collect(),
        })
    }

    /// Writes the batch's part files into place and syncs the directories holding them.
    fn write_files(&self, batch: &StagedBatch) -> Result<Vec<PathBuf>, AnalyticsError> {
        let mut files = Vec::new();
        let mut touched = BTreeSet::new();
        for partition in &batch.partitions {
            let name = part_name(partition.first, partition.last);
            let events = events_batch(partition)?;
            files.push(self.write_part(EVENTS_TABLE, partition.day, &name, &events)?);
            touched.insert(self.dir.join(EVENTS_TABLE));
            touched.insert(partition_dir(&self.dir, EVENTS_TABLE, partition.day));
            if !partition.lines.is_empty() {
                let lines = order_lines_batch(partition)?;
                files.push(self.write_part(ORDER_LINES_TABLE, partition.day, &name, &lines)?);
                touched.insert(self.dir.join(ORDER_LINES_TABLE));
                touched.insert(partition_dir(&self.dir, ORDER_LINES_TABLE, partition.day));
            }
        }
        for dir in &touched {
            sync_dir(dir)?;
        }
        Ok(files)
    }

    /// Writes one part file: temporary name, sync, rename.
    fn write_part(
        &self,
        table: &str,
        day: NaiveDate,
        name: &str,
        batch: &RecordBatch,
    ) -> Result<PathBuf, AnalyticsError> {
        let partition = partition_dir(&self.dir, table, day);
        fs::create_dir_all(&partition).map_err(io_error(&partition))?;
        let tmp = partition.join(format!(".{name}.tmp"));
        let path = partition.join(name);
        let parquet_error = |source| AnalyticsError::Parquet {
            path: tmp.clone(),
            source,
        };
        let file = File::create(&tmp).map_err(io_error(&tmp))?;
        let properties = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .build();
        let mut writer =
            ArrowWriter::try_new(file, batch.schema(), Some(properties)).map_err(parquet_error)?;
        writer.write(batch).map_err(parquet_error)?;
        let file = writer.into_inner().map_err(parquet_error)?;
        file.sync_all().map_err(io_error(&tmp))?;
        drop(file);
        fs::rename(&tmp, &path).map_err(io_error(&path))?;
        Ok(path)
    }

    /// Replaces the watermark file: temporary name, sync, rename, directory sync.
    fn write_watermark(&self, watermark: u64) -> Result<(), AnalyticsError> {
        let tmp = self.dir.join(format!(".{WATERMARK_FILE}.tmp"));
        let path = self.dir.join(WATERMARK_FILE);
        let mut file = File::create(&tmp).map_err(io_error(&tmp))?;
        writeln!(file, "{watermark}").map_err(io_error(&tmp))?;
        file.sync_all().map_err(io_error(&tmp))?;
        drop(file);
        fs::rename(&tmp, &path).map_err(io_error(&path))?;
        sync_dir(&self.dir)
    }
}

/// Gross confirmed revenue per UTC day (of [`EventEnvelope::occurred_at`]) and currency: the
/// sum of the totals of `order_confirmed` events, exactly.
///
/// Cancellations are not subtracted (a cancellation may come days after its order; see
/// [`cancelled_orders`] for their count). An order confirmed twice in the history (the stream
/// carried the same confirmation under two sequences) counts once. Amounts come back at their
/// currency's minor unit when that is exact (`12.50`, not `12.5000`). Reads only committed
/// files (those at or below the watermark).
///
/// # Errors
/// [`AnalyticsError::Io`] or [`AnalyticsError::Parquet`] when a file cannot be read;
/// [`AnalyticsError::Corrupt`] when a file does not have the `events` schema or names an
/// unknown currency; [`AnalyticsError::Overflow`] when a sum exceeds a decimal.
pub fn daily_revenue(
    dir: impl AsRef<Path>,
) -> Result<BTreeMap<NaiveDate, BTreeMap<Currency, Decimal>>, AnalyticsError> {
    let mut revenue: BTreeMap<NaiveDate, BTreeMap<Currency, Decimal>> = BTreeMap::new();
    let mut seen = HashSet::new();
    let columns = ["occurred_at", "event_type", "order_id", "total", "currency"];
    for path in committed_parts(dir.as_ref(), EVENTS_TABLE)? {
        for_each_batch(&path, &columns, |batch| {
            let occurred_at =
                primitive_column::<TimestampMicrosecondType>(batch, "occurred_at", &path)?;
            let event_type = string_column(batch, "event_type", &path)?;
            let order_id = string_column(batch, "order_id", &path)?;
            let total = primitive_column::<Decimal128Type>(batch, "total", &path)?;
            let currency = string_column(batch, "currency", &path)?;
            let scale = u32::try_from(total.scale())
                .map_err(|_| corrupt(&path, "negative scale of `total`"))?;
            for row in 0..batch.num_rows() {
                if event_type.is_null(row) || event_type.value(row) != ORDER_CONFIRMED {
                    continue;
                }
                if order_id.is_null(row) || total.is_null(row) || currency.is_null(row) {
                    return Err(corrupt(
                        &path,
                        "an order_confirmed row without order or total",
                    ));
                }
                if !seen.insert(order_id.value(row).to_owned()) {
                    continue;
                }
                let day = utc_day(occurred_at, row, &path)?;
                let code = currency.value(row);
                let currency = Currency::from_code(code)
                    .ok_or_else(|| corrupt(&path, format!("unknown currency `{code}`")))?;
                let amount = Decimal::try_from_i128_with_scale(total.value(row), scale)
                    .map_err(|_| corrupt(&path, "a total beyond a decimal"))?;
                let sum = revenue.entry(day).or_default().entry(currency).or_default();
                *sum = sum
                    .checked_add(amount)
                    .ok_or(AnalyticsError::Overflow { day, currency })?;
            }
            Ok(())
        })?;
    }
    for sums in revenue.values_mut() {
        for (currency, sum) in sums.iter_mut() {
            *sum = at_minor_units(*sum, *currency);
        }
    }
    Ok(revenue)
}

/// The `n` SKUs with the most units sold over all `order_confirmed` lines, most first, ties
/// by SKU ascending.
///
/// An order confirmed twice in the history counts once. Reads only committed files.
///
/// # Errors
/// [`AnalyticsError::Io`] or [`AnalyticsError::Parquet`] when a file cannot be read;
/// [`AnalyticsError::Corrupt`] when a file does not have the `order_lines` schema.
pub fn top_skus(dir: impl AsRef<Path>, n: usize) -> Result<Vec<(String, u64)>, AnalyticsError> {
    let mut units_by_sku: HashMap<String, u64> = HashMap::new();
    // The lines of an order's first confirmation are counted; those of a later copy (another
    // sequence) are skipped.
    let mut counted: HashMap<String, u64> = HashMap::new();
    for path in committed_parts(dir.as_ref(), ORDER_LINES_TABLE)? {
        for_each_batch(&path, &["seq", "order_id", "sku", "units"], |batch| {
            let seq = primitive_column::<UInt64Type>(batch, "seq", &path)?;
            let order_id = string_column(batch, "order_id", &path)?;
            let sku = string_column(batch, "sku", &path)?;
            let units = primitive_column::<UInt32Type>(batch, "units", &path)?;
            for row in 0..batch.num_rows() {
                if seq.is_null(row)
                    || order_id.is_null(row)
                    || sku.is_null(row)
                    || units.is_null(row)
                {
                    return Err(corrupt(&path, "an order line with a null column"));
                }
                let first_seq = *counted
                    .entry(order_id.value(row).to_owned())
                    .or_insert(seq.value(row));
                if first_seq != seq.value(row) {
                    continue;
                }
                *units_by_sku.entry(sku.value(row).to_owned()).or_default() +=
                    u64::from(units.value(row));
            }
            Ok(())
        })?;
    }
    let mut ranked: Vec<(String, u64)> = units_by_sku.into_iter().collect();
    ranked.sort_by(|(sku_a, units_a), (sku_b, units_b)| {
        units_b.cmp(units_a).then_with(|| sku_a.cmp(sku_b))
    });
    ranked.truncate(n);
    Ok(ranked)
}

/// Orders cancelled per UTC day of the `order_cancelled` event, each order counted once.
///
/// # Errors
/// As [`daily_revenue`].
pub fn cancelled_orders(dir: impl AsRef<Path>) -> Result<BTreeMap<NaiveDate, u64>, AnalyticsError> {
    let mut cancelled: BTreeMap<NaiveDate, u64> = BTreeMap::new();
    let mut seen = HashSet::new();
    for path in committed_parts(dir.as_ref(), EVENTS_TABLE)? {
        for_each_batch(&path, &["occurred_at", "event_type", "order_id"], |batch| {
            let occurred_at =
                primitive_column::<TimestampMicrosecondType>(batch, "occurred_at", &path)?;
            let event_type = string_column(batch, "event_type", &path)?;
            let order_id = string_column(batch, "order_id", &path)?;
            for row in 0..batch.num_rows() {
                if event_type.is_null(row) || event_type.value(row) != ORDER_CANCELLED {
                    continue;
                }
                if order_id.is_null(row) {
                    return Err(corrupt(&path, "an order_cancelled row without order"));
                }
                if seen.insert(order_id.value(row).to_owned()) {
                    *cancelled
                        .entry(utc_day(occurred_at, row, &path)?)
                        .or_default() += 1;
                }
            }
            Ok(())
        })?;
    }
    Ok(cancelled)
}

/// The arrow schema of the `events` table.
pub fn events_schema() -> SchemaRef {
    static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
        Arc::new(Schema::new(vec![
            Field::new("seq", DataType::UInt64, false),
            Field::new("event_id", DataType::Utf8, false),
            Field::new(
                "occurred_at",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                false,
            ),
            Field::new("day", DataType::Date32, false),
            Field::new("event_type", DataType::Utf8, false),
            Field::new("order_id", DataType::Utf8, true),
            Field::new("customer_id", DataType::Utf8, true),
            Field::new(
                "total",
                DataType::Decimal128(TOTAL_PRECISION, TOTAL_SCALE),
                true,
            ),
            Field::new("currency", DataType::Utf8, true),
            Field::new("payload", DataType::Utf8, false),
        ]))
    });
    Arc::clone(&SCHEMA)
}

/// The arrow schema of the `order_lines` table.
pub fn order_lines_schema() -> SchemaRef {
    static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
        Arc::new(Schema::new(vec![
            Field::new("seq", DataType::UInt64, false),
            Field::new("line_no", DataType::UInt32, false),
            Field::new("order_id", DataType::Utf8, false),
            Field::new("sku", DataType::Utf8, false),
            Field::new("units", DataType::UInt32, false),
            Field::new("day", DataType::Date32, false),
        ]))
    });
    Arc::clone(&SCHEMA)
}

/// The rows of one batch, grouped by day, not yet written.
#[derive(Debug)]
struct StagedBatch {
    /// Events to write.
    exported: usize,
    /// Highest sequence of the batch, the next watermark; `None` when nothing is new.
    last_seq: Option<u64>,
    /// One per day, in date order.
    partitions: Vec<Partition>,
}

/// The rows of one day of a batch.
#[derive(Debug)]
struct Partition {
    day: NaiveDate,
    first: u64,
    last: u64,
    events: Vec<EventRow>,
    lines: Vec<LineRow>,
}

/// One row of `events`.
#[derive(Debug)]
struct EventRow {
    seq: u64,
    event_id: String,
    occurred_at: i64,
    event_type: String,
    order_id: Option<String>,
    customer_id: Option<String>,
    /// The total at scale [`TOTAL_SCALE`], and its currency code.
    total: Option<(i128, &'static str)>,
    payload: String,
}

/// One row of `order_lines`.
#[derive(Debug)]
struct LineRow {
    seq: u64,
    line_no: u32,
    order_id: String,
    sku: String,
    units: u32,
}

/// Adds the rows of one event to its day.
fn stage_event(
    seq: u64,
    envelope: &EventEnvelope,
    partition: &mut Partition,
) -> Result<(), AnalyticsError> {
    let json = serde_json::to_value(&envelope.event)
        .map_err(|source| AnalyticsError::Serialize { seq, source })?;
    let event_type = json
        .get("type")
        .and_then(|t| t.as_str())
        .unwrap_or("unknown")
        .to_owned();
    let scaled = |amount: Decimal| {
        to_total_scale(amount).ok_or(AnalyticsError::AmountOutOfRange { seq, amount })
    };
    let (order_id, customer_id, total) = match &envelope.event {
        DomainEvent::OrderPlaced {
            order,
            customer,
            total,
        } => (
            Some(order.to_string()),
            Some(customer.to_string()),
            Some((scaled(total.amount)?, total.currency.code())),
        ),
        DomainEvent::OrderConfirmed {
            order,
            customer,
            lines,
            total,
            ..
        } => {
            for (line_no, (sku, units)) in (0u32..).zip(lines) {
                partition.lines.push(LineRow {
                    seq,
                    line_no,
                    order_id: order.to_string(),
                    sku: sku.as_str().to_owned(),
                    units: *units,
                });
            }
            (
                Some(order.to_string()),
                Some(customer.to_string()),
                Some((scaled(total.amount)?, total.currency.code())),
            )
        }
        DomainEvent::OrderFailed { order, .. }
        | DomainEvent::OrderShipped { order }
        | DomainEvent::OrderDelivered { order }
        | DomainEvent::OrderCancelled { order } => (Some(order.to_string()), None, None),
        DomainEvent::ProductChanged { .. } => (None, None, None),
        // A variant added after this module: its serde name and payload say what it is.
        _ => (None, None, None),
    };
    partition.events.push(EventRow {
        seq,
        event_id: envelope.id.to_string(),
        occurred_at: envelope.occurred_at.timestamp_micros(),
        event_type,
        order_id,
        customer_id,
        total,
        payload: json.to_string(),
    });
    Ok(())
}

/// The `events` record batch of one day.
fn events_batch(partition: &Partition) -> Result<RecordBatch, AnalyticsError> {
    let rows = &partition.events;
    let day = Date32Type::from_naive_date(partition.day);
    let total = Decimal128Array::from(
        rows.iter()
            .map(|r| r.total.map(|(amount, _)| amount))
            .collect::<Vec<_>>(),
    )
    .with_precision_and_scale(TOTAL_PRECISION, TOTAL_SCALE)?;
    let columns: Vec<ArrayRef> = vec![
        Arc::new(UInt64Array::from_iter_values(rows.iter().map(|r| r.seq))),
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|r| r.event_id.as_str()),
        )),
        Arc::new(
            TimestampMicrosecondArray::from_iter_values(rows.iter().map(|r| r.occurred_at))
                .with_timezone("UTC"),
        ),
        Arc::new(Date32Array::from_iter_values(rows.iter().map(|_| day))),
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|r| r.event_type.as_str()),
        )),
        Arc::new(
            rows.iter()
                .map(|r| r.order_id.as_deref())
                .collect::<StringArray>(),
        ),
        Arc::new(
            rows.iter()
                .map(|r| r.customer_id.as_deref())
                .collect::<StringArray>(),
        ),
        Arc::new(total),
        Arc::new(
            rows.iter()
                .map(|r| r.total.map(|(_, code)| code))
                .collect::<StringArray>(),
        ),
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|r| r.payload.as_str()),
        )),
    ];
    Ok(RecordBatch::try_new(events_schema(), columns)?)
}

/// The `order_lines` record batch of one day.
fn order_lines_batch(partition: &Partition) -> Result<RecordBatch, AnalyticsError> {
    let rows = &partition.lines;
    let day = Date32Type::from_naive_date(partition.day);
    let columns: Vec<ArrayRef> = vec![
        Arc::new(UInt64Array::from_iter_values(rows.iter().map(|r| r.seq))),
        Arc::new(UInt32Array::from_iter_values(
            rows.iter().map(|r| r.line_no),
        )),
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|r| r.order_id.as_str()),
        )),
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|r| r.sku.as_str()),
        )),
        Arc::new(UInt32Array::from_iter_values(rows.iter().map(|r| r.units))),
        Arc::new(Date32Array::from_iter_values(rows.iter().map(|_| day))),
    ];
    Ok(RecordBatch::try_new(order_lines_schema(), columns)?)
}

/// The amount as an integer at scale [`TOTAL_SCALE`], if that is exact.
fn to_total_scale(amount: Decimal) -> Option<i128> {
    let normalized = amount.normalize();
    let shift = u32::try_from(TOTAL_SCALE)
        .ok()?
        .checked_sub(normalized.scale())?;
    normalized
        .mantissa()
        .checked_mul(10i128.checked_pow(shift)?)
}

/// `sum` written with its currency's decimal places, when that loses nothing.
fn at_minor_units(sum: Decimal, currency: Currency) -> Decimal {
    let mut normalized = sum.normalize();
    if normalized.scale() <= currency.minor_units() {
        normalized.rescale(currency.minor_units());
        normalized
    } else {
        sum
    }
}

/// `part-{first:020}-{last:020}.parquet`: zero-padded so names sort by sequence.
fn part_name(first: u64, last: u64) -> String {
    format!("part-{first:020}-{last:020}.parquet")
}

/// The first and last sequence of a part file's name, `None` for any other name.
fn parse_part_name(name: &str) -> Option<(u64, u64)> {
    let range = name.strip_prefix("part-")?.strip_suffix(".parquet")?;
    let (first, last) = range.split_once('-')?;
    let digits = |s: &str| s.len() == 20 && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(first) || !digits(last) {
        return None;
    }
    Some((first.parse().ok()?, last.parse().ok()?))
}

/// `dir/{table}/date=YYYY-MM-DD`.
fn partition_dir(dir: &Path, table: &str, day: NaiveDate) -> PathBuf {
    dir.join(table)
        .join(format!("date={}", day.format("%Y-%m-%d")))
}

/// A `date=` directory of a table.
#[derive(Debug)]
struct PartitionDir {
    day: NaiveDate,
    path: PathBuf,
}

/// The `date=YYYY-MM-DD` directories of a table, by date; none when the table does not exist.
fn partitions(table: &Path) -> Result<Vec<PartitionDir>, AnalyticsError> {
    if !table.exists() {
        return Ok(Vec::new());
    }
    let mut found = Vec::new();
    for (name, path) in list_dir(table)? {
        let Some(date) = name.strip_prefix("date=") else {
            continue;
        };
        if let Ok(day) = NaiveDate::parse_from_str(date, "%Y-%m-%d")
            && path.is_dir()
        {
            found.push(PartitionDir { day, path });
        }
    }
    found.sort_by_key(|p| p.day);
    Ok(found)
}

/// The entries of a directory, by name; names that are not UTF-8 are left out (this module
/// writes none).
fn list_dir(dir: &Path) -> Result<Vec<(String, PathBuf)>, AnalyticsError> {
    let mut entries = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_error(dir))? {
        let entry = entry.map_err(io_error(dir))?;
        if let Ok(name) = entry.file_name().into_string() {
            entries.push((name, entry.path()));
        }
    }
    entries.sort();
    Ok(entries)
}

/// The committed part files of a table (first sequence at or below the watermark), by date
/// then sequence.
fn committed_parts(dir: &Path, table: &str) -> Result<Vec<PathBuf>, AnalyticsError> {
    fs::metadata(dir).map_err(io_error(dir))?;
    // Read the watermark before listing: a batch committed in between is then left out
    // whole, never seen in part.
    let watermark = read_watermark(dir)?;
    let mut parts = Vec::new();
    for partition in partitions(&dir.join(table))? {
        for (name, path) in list_dir(&partition.path)? {
            if parse_part_name(&name).is_some_and(|(first, _)| first <= watermark) {
                parts.push(path);
            }
        }
    }
    Ok(parts)
}

/// The highest sequence exported to `dir`, read without touching anything (for queries and
/// monitors beside a running exporter; [`ParquetExporter::open`] also cleans up, so only the
/// exporter opens). 0 when nothing was exported.
///
/// # Errors
/// [`AnalyticsError::Io`] when the watermark cannot be read; [`AnalyticsError::Corrupt`]
/// when it is not a number.
pub fn exported_up_to(dir: impl AsRef<Path>) -> Result<u64, AnalyticsError> {
    read_watermark(dir.as_ref())
}

/// The watermark in `dir`, 0 when there is no file yet.
fn read_watermark(dir: &Path) -> Result<u64, AnalyticsError> {
    let path = dir.join(WATERMARK_FILE);
    match fs::read_to_string(&path) {
        Ok(text) => text
            .trim()
            .parse()
            .map_err(|_| corrupt(&path, "the watermark is not a sequence number")),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(io_error(&path)(e)),
    }
}

/// Reads the named columns of a Parquet file, one record batch at a time.
fn for_each_batch(
    path: &Path,
    columns: &[&str],
    mut visit: impl FnMut(&RecordBatch) -> Result<(), AnalyticsError>,
) -> Result<(), AnalyticsError> {
    let parquet_error = |source| AnalyticsError::Parquet {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(io_error(path))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(parquet_error)?;
    let mask = ProjectionMask::columns(builder.parquet_schema(), columns.iter().copied());
    let reader = builder
        .with_projection(mask)
        .build()
        .map_err(parquet_error)?;
    for batch in reader {
        visit(&batch?)?;
    }
    Ok(())
}

/// A column of a primitive type, or [`AnalyticsError::Corrupt`].
fn primitive_column<'a, T: ArrowPrimitiveType>(
    batch: &'a RecordBatch,
    name: &str,
    path: &Path,
) -> Result<&'a PrimitiveArray<T>, AnalyticsError> {
    batch
        .column_by_name(name)
        .and_then(|c| c.as_primitive_opt::<T>())
        .ok_or_else(|| {
            corrupt(
                path,
                format!("column `{name}` is missing or not of type {}", T::DATA_TYPE),
            )
        })
}

/// A `Utf8` column, or [`AnalyticsError::Corrupt`].
fn string_column<'a>(
    batch: &'a RecordBatch,
    name: &str,
    path: &Path,
) -> Result<&'a StringArray, AnalyticsError> {
    batch
        .column_by_name(name)
        .and_then(|c| c.as_string_opt::<i32>())
        .ok_or_else(|| corrupt(path, format!("column `{name}` is missing or not Utf8")))
}

/// The UTC date of a row's `occurred_at`.
fn utc_day(
    occurred_at: &PrimitiveArray<TimestampMicrosecondType>,
    row: usize,
    path: &Path,
) -> Result<NaiveDate, AnalyticsError> {
    if occurred_at.is_null(row) {
        return Err(corrupt(path, "a null `occurred_at`"));
    }
    DateTime::from_timestamp_micros(occurred_at.value(row))
        .map(|t| t.date_naive())
        .ok_or_else(|| corrupt(path, "an `occurred_at` out of range"))
}

fn corrupt(path: &Path, reason: impl Into<String>) -> AnalyticsError {
    AnalyticsError::Corrupt {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> AnalyticsError + '_ {
    move |source| AnalyticsError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Makes a directory's entries (new files, renames) durable. Only Unix can open a directory
/// for that; elsewhere this does nothing.
fn sync_dir(dir: &Path) -> Result<(), AnalyticsError> {
    #[cfg(unix)]
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error(dir))?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

#[cfg(test)]
mod tests;
