use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use arrow_array::cast::AsArray;
use arrow_array::types::{Date32Type, Decimal128Type, UInt64Type};
use arrow_array::{Array, RecordBatch};
use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use ecommerce_core::events::{DomainEvent, EventEnvelope};
use ecommerce_core::id::{CustomerId, EventId, OrderId, ProductId, Sku};
use ecommerce_core::money::{Currency, Decimal, Money};
use ecommerce_core::order::FailureReason;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::*;

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

fn at(day: u32, h: u32, m: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, day, h, m, s).unwrap()
}

fn date(day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2025, 3, day).unwrap()
}

fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

fn envelope(occurred_at: DateTime<Utc>, event: DomainEvent) -> EventEnvelope {
    EventEnvelope {
        id: EventId::new(),
        occurred_at,
        event,
    }
}

fn confirmed(
    occurred_at: DateTime<Utc>,
    order: OrderId,
    lines: &[(&str, u32)],
    total: &str,
    currency: Currency,
) -> EventEnvelope {
    envelope(
        occurred_at,
        DomainEvent::OrderConfirmed {
            order,
            customer: CustomerId::new(),
            lines: lines
                .iter()
                .map(|(sku, units)| (Sku::new(*sku).unwrap(), *units))
                .collect(),
            total: Money::new(dec(total), currency),
            cart: None,
        },
    )
}

fn placed(occurred_at: DateTime<Utc>, order: OrderId, total: &str) -> EventEnvelope {
    envelope(
        occurred_at,
        DomainEvent::OrderPlaced {
            order,
            customer: CustomerId::new(),
            total: Money::new(dec(total), Currency::USD),
        },
    )
}

fn cancelled(occurred_at: DateTime<Utc>, order: OrderId) -> EventEnvelope {
    envelope(occurred_at, DomainEvent::OrderCancelled { order })
}

fn numbered(first: u64, events: Vec<EventEnvelope>) -> Vec<(u64, EventEnvelope)> {
    (first..).zip(events).collect()
}

/// Every row of a table on disk, committed or not, as record batches.
fn all_batches(dir: &Path, table: &str) -> Vec<RecordBatch> {
    let mut batches = Vec::new();
    for partition in partitions(&dir.join(table)).unwrap() {
        for (name, path) in list_dir(&partition.path).unwrap() {
            if parse_part_name(&name).is_some() {
                for_each_batch(&path, &["seq"], |b| {
                    batches.push(b.clone());
                    Ok(())
                })
                .unwrap();
            }
        }
    }
    batches
}

/// The `seq` column of every part file of a table on disk, committed or not, sorted.
fn seqs_on_disk(dir: &Path, table: &str) -> Vec<u64> {
    let mut seqs: Vec<u64> = all_batches(dir, table)
        .iter()
        .flat_map(|b| {
            b.column_by_name("seq")
                .unwrap()
                .as_primitive::<UInt64Type>()
                .values()
                .to_vec()
        })
        .collect();
    seqs.sort_unstable();
    seqs
}

/// Every file under a table, relative to `dir`, sorted.
fn files_on_disk(dir: &Path) -> Vec<String> {
    let mut files = Vec::new();
    for table in [EVENTS_TABLE, ORDER_LINES_TABLE] {
        for partition in partitions(&dir.join(table)).unwrap() {
            for (name, _) in list_dir(&partition.path).unwrap() {
                let partition_name = partition.path.file_name().unwrap().to_str().unwrap();
                files.push(format!("{table}/{partition_name}/{name}"));
            }
        }
    }
    files.sort();
    files
}

/// Gross confirmed revenue computed from the input events, independently of the files.
fn expected_revenue(
    events: &[(u64, EventEnvelope)],
) -> BTreeMap<NaiveDate, BTreeMap<Currency, Decimal>> {
    let mut expected: BTreeMap<NaiveDate, BTreeMap<Currency, Decimal>> = BTreeMap::new();
    for (_, e) in events {
        if let DomainEvent::OrderConfirmed { total, .. } = &e.event {
            *expected
                .entry(e.occurred_at.date_naive())
                .or_default()
                .entry(total.currency)
                .or_default() += total.amount;
        }
    }
    expected
}

fn part(table: &str, day: u32, first: u64, last: u64) -> String {
    format!("{table}/date=2025-03-{day:02}/part-{first:020}-{last:020}.parquet")
}

#[test]
fn export_reopen_and_redelivery_export_each_event_once() -> Result {
    let dir = tempfile::tempdir()?;
    let (a, b) = (OrderId::new(), OrderId::new());
    let first_batch = numbered(
        1,
        vec![
            placed(at(1, 9, 0, 0), a, "30.00"),
            confirmed(
                at(1, 9, 5, 0),
                a,
                &[("MUG", 2), ("TEE", 1)],
                "30.00",
                Currency::USD,
            ),
            confirmed(at(2, 10, 0, 0), b, &[("MUG", 1)], "12.00", Currency::USD),
            cancelled(at(2, 11, 0, 0), b),
        ],
    );

    let mut exporter = ParquetExporter::open(dir.path())?;
    assert_eq!(exporter.watermark(), 0);
    let report = exporter.export(&first_batch)?;
    assert_eq!(report.exported, 4);
    assert_eq!(report.skipped, 0);
    assert_eq!(report.order_lines, 3);
    assert_eq!(report.watermark, 4);
    let written: Vec<String> = report
        .files
        .iter()
        .map(|p| {
            p.strip_prefix(dir.path())
                .unwrap()
                .to_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        written,
        vec![
            part("events", 1, 1, 2),
            part("order_lines", 1, 1, 2),
            part("events", 2, 3, 4),
            part("order_lines", 2, 3, 4),
        ]
    );
    assert_eq!(fs::read_to_string(dir.path().join("_watermark"))?, "4\n");
    drop(exporter);

    // After a restart the stream redelivers the whole batch, followed by new events.
    let mut exporter = ParquetExporter::open(dir.path())?;
    assert_eq!(exporter.watermark(), 4);
    let c = OrderId::new();
    let mut second_batch = first_batch.clone();
    second_batch.extend(numbered(
        5,
        vec![
            placed(at(2, 12, 0, 0), c, "7.50"),
            confirmed(at(2, 12, 1, 0), c, &[("TEE", 3)], "7.50", Currency::USD),
        ],
    ));
    let report = exporter.export(&second_batch)?;
    assert_eq!(report.exported, 2);
    assert_eq!(report.skipped, 4);
    assert_eq!(report.order_lines, 1);
    assert_eq!(report.watermark, 6);
    assert_eq!(exporter.watermark(), 6);

    assert_eq!(
        seqs_on_disk(dir.path(), EVENTS_TABLE),
        vec![1, 2, 3, 4, 5, 6]
    );
    assert_eq!(
        seqs_on_disk(dir.path(), ORDER_LINES_TABLE),
        vec![2, 2, 3, 6]
    );

    // Delivered a third time: nothing is written at all.
    let before = files_on_disk(dir.path());
    let report = exporter.export(&second_batch)?;
    assert_eq!((report.exported, report.skipped), (0, 6));
    assert!(report.files.is_empty());
    assert_eq!(files_on_disk(dir.path()), before);
    assert_eq!(before.len(), 6);

    let revenue = daily_revenue(dir.path())?;
    assert_eq!(revenue, expected_revenue(&second_batch));
    assert_eq!(
        revenue,
        BTreeMap::from([
            (date(1), BTreeMap::from([(Currency::USD, dec("30.00"))])),
            (date(2), BTreeMap::from([(Currency::USD, dec("19.50"))])),
        ])
    );
    Ok(())
}

#[test]
fn a_crash_leftover_is_removed_on_open_and_never_counted() -> Result {
    let dir = tempfile::tempdir()?;
    let committed = numbered(
        1,
        vec![
            confirmed(
                at(1, 8, 0, 0),
                OrderId::new(),
                &[("MUG", 1)],
                "10.00",
                Currency::USD,
            ),
            confirmed(
                at(1, 9, 0, 0),
                OrderId::new(),
                &[("TEE", 2)],
                "20.00",
                Currency::USD,
            ),
        ],
    );
    let crashed = numbered(
        3,
        vec![
            confirmed(
                at(1, 23, 0, 0),
                OrderId::new(),
                &[("MUG", 4)],
                "40.00",
                Currency::USD,
            ),
            confirmed(
                at(2, 1, 0, 0),
                OrderId::new(),
                &[("CAP", 5)],
                "5.55",
                Currency::EUR,
            ),
        ],
    );

    let mut exporter = ParquetExporter::open(dir.path())?;
    exporter.export(&committed)?;
    // The crash: the batch's files are in place, the watermark is not.
    let staged = exporter.stage(&crashed)?;
    let leftovers = exporter.write_files(&staged)?;
    drop(exporter);
    assert_eq!(leftovers.len(), 4);
    let stray_tmp = dir
        .path()
        .join("events/date=2025-03-01")
        .join(format!(".{}.tmp", part_name(3, 9)));
    fs::write(&stray_tmp, b"half a file")?;

    // Before the restart, queries see the committed batch only.
    let only_committed =
        BTreeMap::from([(date(1), BTreeMap::from([(Currency::USD, dec("30.00"))]))]);
    assert_eq!(daily_revenue(dir.path())?, only_committed);
    assert_eq!(
        top_skus(dir.path(), 10)?,
        vec![("TEE".to_owned(), 2), ("MUG".to_owned(), 1)]
    );

    let mut exporter = ParquetExporter::open(dir.path())?;
    assert_eq!(exporter.watermark(), 2);
    for leftover in &leftovers {
        assert!(
            !leftover.exists(),
            "{} survived the restart",
            leftover.display()
        );
    }
    assert!(!stray_tmp.exists());
    assert_eq!(
        files_on_disk(dir.path()),
        vec![part("events", 1, 1, 2), part("order_lines", 1, 1, 2)]
    );

    // The stream delivers the uncommitted events again.
    let mut redelivered = committed.clone();
    redelivered.extend(crashed.clone());
    let report = exporter.export(&redelivered)?;
    assert_eq!(
        (report.exported, report.skipped, report.watermark),
        (2, 2, 4)
    );
    assert_eq!(seqs_on_disk(dir.path(), EVENTS_TABLE), vec![1, 2, 3, 4]);

    let revenue = daily_revenue(dir.path())?;
    assert_eq!(revenue, expected_revenue(&redelivered));
    assert_eq!(
        revenue,
        BTreeMap::from([
            (date(1), BTreeMap::from([(Currency::USD, dec("70.00"))])),
            (date(2), BTreeMap::from([(Currency::EUR, dec("5.55"))])),
        ])
    );
    assert_eq!(
        top_skus(dir.path(), 10)?,
        vec![
            ("CAP".to_owned(), 5),
            ("MUG".to_owned(), 5),
            ("TEE".to_owned(), 2)
        ]
    );
    Ok(())
}

#[test]
fn a_failed_batch_is_cleaned_before_the_next_one() -> Result {
    let dir = tempfile::tempdir()?;
    let events = numbered(
        1,
        vec![
            confirmed(
                at(1, 8, 0, 0),
                OrderId::new(),
                &[("MUG", 1)],
                "10.00",
                Currency::USD,
            ),
            confirmed(
                at(1, 9, 0, 0),
                OrderId::new(),
                &[("MUG", 2)],
                "20.00",
                Currency::USD,
            ),
            confirmed(
                at(2, 9, 0, 0),
                OrderId::new(),
                &[("MUG", 4)],
                "40.00",
                Currency::USD,
            ),
        ],
    );
    let mut exporter = ParquetExporter::open(dir.path())?;
    // A file where the second day's partition goes: day 1 is written, then day 2 fails.
    let blocker = dir.path().join("events/date=2025-03-02");
    fs::write(&blocker, b"")?;
    let err = exporter.export(&events).unwrap_err();
    assert!(err.is_io(), "{err:?}");
    assert_eq!(exporter.watermark(), 0);
    let stale = dir.path().join(part("events", 1, 1, 2));
    assert!(stale.exists());
    fs::remove_file(&blocker)?;

    // The retry is smaller: were the stale `part-1-2` kept, seq 2 would be counted twice once
    // the watermark passes 1.
    let report = exporter.export(&events[..1])?;
    assert_eq!((report.exported, report.watermark), (1, 1));
    assert!(!stale.exists());
    let report = exporter.export(&events)?;
    assert_eq!(
        (report.exported, report.skipped, report.watermark),
        (2, 1, 3)
    );
    assert_eq!(seqs_on_disk(dir.path(), EVENTS_TABLE), vec![1, 2, 3]);
    assert_eq!(top_skus(dir.path(), 10)?, vec![("MUG".to_owned(), 7)]);
    assert_eq!(
        daily_revenue(dir.path())?,
        BTreeMap::from([
            (date(1), BTreeMap::from([(Currency::USD, dec("30.00"))])),
            (date(2), BTreeMap::from([(Currency::USD, dec("40.00"))])),
        ])
    );
    Ok(())
}

#[test]
fn daily_revenue_is_exact_per_utc_day_and_currency() -> Result {
    let dir = tempfile::tempdir()?;
    let refunded = OrderId::new();
    let cancellation = cancelled(at(2, 8, 0, 0), refunded);
    let events = numbered(
        1,
        vec![
            confirmed(
                at(1, 0, 0, 0),
                OrderId::new(),
                &[("A", 1)],
                "19.99",
                Currency::USD,
            ),
            confirmed(
                at(1, 10, 0, 0),
                OrderId::new(),
                &[("A", 1)],
                "0.01",
                Currency::USD,
            ),
            confirmed(
                at(1, 11, 0, 0),
                OrderId::new(),
                &[("B", 1)],
                "1234.5",
                Currency::EUR,
            ),
            confirmed(at(1, 12, 0, 0), refunded, &[("C", 1)], "5", Currency::USD),
            // Not revenue: placed orders and a cancellation (gross revenue keeps the order).
            placed(at(1, 12, 30, 0), OrderId::new(), "999.99"),
            cancellation.clone(),
            envelope(
                Utc.with_ymd_and_hms(2025, 3, 1, 23, 59, 59).unwrap()
                    + chrono::Duration::microseconds(999_999),
                DomainEvent::OrderConfirmed {
                    order: OrderId::new(),
                    customer: CustomerId::new(),
                    lines: vec![],
                    total: Money::new(dec("0.10"), Currency::USD),
                    cart: None,
                },
            ),
        ],
    );
    let next_day = numbered(
        8,
        vec![
            confirmed(
                at(2, 0, 0, 0),
                OrderId::new(),
                &[("A", 2)],
                "100.00",
                Currency::USD,
            ),
            confirmed(
                at(2, 7, 0, 0),
                OrderId::new(),
                &[("B", 1)],
                "0.05",
                Currency::EUR,
            ),
            confirmed(
                at(2, 7, 1, 0),
                OrderId::new(),
                &[("B", 1)],
                "0.07",
                Currency::EUR,
            ),
            confirmed(
                at(2, 9, 0, 0),
                OrderId::new(),
                &[("K", 1)],
                "1.234",
                Currency::KWD,
            ),
            // Published twice by the relay: one cancelled order still.
            cancellation,
        ],
    );

    let mut exporter = ParquetExporter::open(dir.path())?;
    exporter.export(&events)?;
    exporter.export(&next_day)?;

    let all: Vec<_> = events.iter().chain(&next_day).cloned().collect();
    let revenue = daily_revenue(dir.path())?;
    assert_eq!(revenue, expected_revenue(&all));
    assert_eq!(
        revenue,
        BTreeMap::from([
            (
                date(1),
                BTreeMap::from([
                    (Currency::EUR, dec("1234.50")),
                    (Currency::USD, dec("25.10"))
                ])
            ),
            (
                date(2),
                BTreeMap::from([
                    (Currency::EUR, dec("0.12")),
                    (Currency::KWD, dec("1.234")),
                    (Currency::USD, dec("100.00")),
                ])
            ),
        ])
    );
    // Written at the currency's minor unit, as on a receipt.
    assert_eq!(revenue[&date(1)][&Currency::USD].to_string(), "25.10");
    assert_eq!(revenue[&date(1)][&Currency::EUR].to_string(), "1234.50");
    assert_eq!(revenue[&date(2)][&Currency::KWD].to_string(), "1.234");

    assert_eq!(
        cancelled_orders(dir.path())?,
        BTreeMap::from([(date(2), 1)])
    );
    Ok(())
}

#[test]
fn top_skus_rank_by_units_then_sku() -> Result {
    let dir = tempfile::tempdir()?;
    let events = numbered(
        1,
        vec![
            confirmed(
                at(1, 8, 0, 0),
                OrderId::new(),
                &[("ALPHA", 2), ("DELTA", 1)],
                "1",
                Currency::USD,
            ),
            confirmed(
                at(1, 9, 0, 0),
                OrderId::new(),
                &[("CHARLIE", 5), ("ECHO", 3)],
                "1",
                Currency::USD,
            ),
            confirmed(
                at(2, 9, 0, 0),
                OrderId::new(),
                &[("ALPHA", 3), ("BRAVO", 3)],
                "1",
                Currency::EUR,
            ),
            // Placed but not confirmed: no line is sold.
            placed(at(2, 10, 0, 0), OrderId::new(), "1"),
        ],
    );
    let mut exporter = ParquetExporter::open(dir.path())?;
    exporter.export(&events)?;

    let sku = |s: &str, n: u64| (s.to_owned(), n);
    assert_eq!(
        top_skus(dir.path(), 3)?,
        vec![sku("ALPHA", 5), sku("CHARLIE", 5), sku("BRAVO", 3)]
    );
    assert_eq!(
        top_skus(dir.path(), 100)?,
        vec![
            sku("ALPHA", 5),
            sku("CHARLIE", 5),
            sku("BRAVO", 3),
            sku("ECHO", 3),
            sku("DELTA", 1)
        ]
    );
    assert_eq!(top_skus(dir.path(), 0)?, vec![]);
    Ok(())
}

#[test]
fn a_confirmation_repeated_under_two_sequences_counts_once() -> Result {
    let dir = tempfile::tempdir()?;
    let order = OrderId::new();
    let event = confirmed(at(1, 8, 0, 0), order, &[("MUG", 2)], "10.00", Currency::USD);
    let other = confirmed(
        at(1, 9, 0, 0),
        OrderId::new(),
        &[("MUG", 1)],
        "1.00",
        Currency::USD,
    );
    let mut exporter = ParquetExporter::open(dir.path())?;
    // The same sequence twice in one call is one event.
    let report = exporter.export(&[(1, event.clone()), (1, event.clone()), (2, other)])?;
    assert_eq!((report.exported, report.skipped), (2, 1));
    // The relay published it again: a new sequence, in the same file and in a later one.
    exporter.export(&[(3, event.clone()), (4, event.clone())])?;
    exporter.export(&[(5, event)])?;
    assert_eq!(seqs_on_disk(dir.path(), EVENTS_TABLE), vec![1, 2, 3, 4, 5]);

    assert_eq!(
        daily_revenue(dir.path())?,
        BTreeMap::from([(date(1), BTreeMap::from([(Currency::USD, dec("11.00"))]))])
    );
    assert_eq!(top_skus(dir.path(), 10)?, vec![("MUG".to_owned(), 3)]);
    Ok(())
}

#[test]
fn an_amount_beyond_four_decimals_is_refused_before_anything_is_written() -> Result {
    let dir = tempfile::tempdir()?;
    let mut exporter = ParquetExporter::open(dir.path())?;
    let events = numbered(
        1,
        vec![
            confirmed(
                at(1, 8, 0, 0),
                OrderId::new(),
                &[("MUG", 1)],
                "1.00",
                Currency::USD,
            ),
            confirmed(
                at(2, 8, 0, 0),
                OrderId::new(),
                &[("MUG", 1)],
                "1.00001",
                Currency::USD,
            ),
        ],
    );
    match exporter.export(&events) {
        Err(AnalyticsError::AmountOutOfRange { seq, amount }) => {
            assert_eq!((seq, amount), (2, dec("1.00001")));
        }
        other => panic!("expected AmountOutOfRange, got {other:?}"),
    }
    assert_eq!(exporter.watermark(), 0);
    assert!(files_on_disk(dir.path()).is_empty());

    // Trailing zeros beyond the scale are not a loss.
    let report = exporter.export(&numbered(
        3,
        vec![confirmed(
            at(1, 8, 0, 0),
            OrderId::new(),
            &[("MUG", 1)],
            "1.23450000",
            Currency::USD,
        )],
    ))?;
    assert_eq!(report.exported, 1);
    assert_eq!(
        daily_revenue(dir.path())?,
        BTreeMap::from([(date(1), BTreeMap::from([(Currency::USD, dec("1.2345"))]))])
    );
    Ok(())
}

#[test]
fn files_have_the_documented_schema_and_values() -> Result {
    let dir = tempfile::tempdir()?;
    let order = OrderId::new();
    let customer = CustomerId::new();
    let events = numbered(
        10,
        vec![
            envelope(
                at(1, 8, 0, 0),
                DomainEvent::OrderConfirmed {
                    order,
                    customer,
                    lines: vec![(Sku::new("MUG")?, 2), (Sku::new("TEE")?, 1)],
                    total: Money::new(dec("19.99"), Currency::USD),
                    cart: None,
                },
            ),
            envelope(
                at(1, 8, 1, 0),
                DomainEvent::OrderFailed {
                    order,
                    reason: FailureReason::PaymentNotCompleted,
                },
            ),
            envelope(at(1, 8, 2, 0), DomainEvent::OrderShipped { order }),
            envelope(at(1, 8, 3, 0), DomainEvent::OrderDelivered { order }),
            envelope(
                at(1, 8, 4, 0),
                DomainEvent::ProductChanged {
                    product: ProductId::new(),
                },
            ),
        ],
    );
    let mut exporter = ParquetExporter::open(dir.path())?;
    exporter.export(&events)?;

    let read = |table: &str| -> Result<RecordBatch> {
        let file = fs::File::open(dir.path().join(part(table, 1, 10, 14)))?;
        let mut reader = ParquetRecordBatchReaderBuilder::try_new(file)?.build()?;
        Ok(reader.next().unwrap()?)
    };
    let batch = read("events")?;
    assert_eq!(batch.schema(), events_schema());
    assert_eq!(batch.num_rows(), 5);
    let strings = |name: &str| -> Vec<Option<String>> {
        batch
            .column_by_name(name)
            .unwrap()
            .as_string::<i32>()
            .iter()
            .map(|v| v.map(str::to_owned))
            .collect()
    };
    assert_eq!(
        strings("event_type"),
        [
            "order_confirmed",
            "order_failed",
            "order_shipped",
            "order_delivered",
            "product_changed"
        ]
        .map(|s| Some(s.to_owned()))
    );
    let o = Some(order.to_string());
    assert_eq!(
        strings("order_id"),
        vec![o.clone(), o.clone(), o.clone(), o, None]
    );
    assert_eq!(
        strings("customer_id"),
        vec![Some(customer.to_string()), None, None, None, None]
    );
    assert_eq!(
        strings("currency"),
        vec![Some("USD".to_owned()), None, None, None, None]
    );
    assert_eq!(
        strings("event_id"),
        events
            .iter()
            .map(|(_, e)| Some(e.id.to_string()))
            .collect::<Vec<_>>()
    );
    let total = batch
        .column_by_name("total")
        .unwrap()
        .as_primitive::<Decimal128Type>();
    assert_eq!(total.value(0), 199_900);
    assert_eq!(total.null_count(), 4);
    let occurred_at = batch
        .column_by_name("occurred_at")
        .unwrap()
        .as_primitive::<arrow_array::types::TimestampMicrosecondType>();
    assert_eq!(occurred_at.value(0), at(1, 8, 0, 0).timestamp_micros());
    let day = batch
        .column_by_name("day")
        .unwrap()
        .as_primitive::<Date32Type>();
    assert_eq!(day.value(4), Date32Type::from_naive_date(date(1)));
    // The payload is the event as serde writes it: it reads back to the same event.
    for (row, payload) in strings("payload").into_iter().enumerate() {
        let event: DomainEvent = serde_json::from_str(&payload.unwrap())?;
        assert_eq!(event, events[row].1.event);
    }

    let lines = read("order_lines")?;
    assert_eq!(lines.schema(), order_lines_schema());
    assert_eq!(lines.num_rows(), 2);
    let skus: Vec<_> = lines
        .column_by_name("sku")
        .unwrap()
        .as_string::<i32>()
        .iter()
        .collect();
    assert_eq!(skus, vec![Some("MUG"), Some("TEE")]);
    let units = lines
        .column_by_name("units")
        .unwrap()
        .as_primitive::<arrow_array::types::UInt32Type>();
    assert_eq!(units.values().to_vec(), vec![2, 1]);
    let line_no = lines
        .column_by_name("line_no")
        .unwrap()
        .as_primitive::<arrow_array::types::UInt32Type>();
    assert_eq!(line_no.values().to_vec(), vec![0, 1]);
    Ok(())
}

#[test]
fn every_currency_fits_the_total_scale() {
    let largest = Currency::all().map(Currency::minor_units).max();
    assert_eq!(largest, Some(u32::try_from(TOTAL_SCALE).unwrap()));
}

#[test]
fn part_names_round_trip_and_others_are_ignored() {
    assert_eq!(
        part_name(1, 42),
        "part-00000000000000000001-00000000000000000042.parquet"
    );
    assert_eq!(
        parse_part_name(&part_name(7, u64::MAX)),
        Some((7, u64::MAX))
    );
    assert_eq!(parse_part_name("part-1-2.parquet"), None);
    assert_eq!(
        parse_part_name(".part-00000000000000000001-00000000000000000042.parquet.tmp"),
        None
    );
    assert_eq!(parse_part_name("notes.txt"), None);
}

#[test]
fn a_malformed_watermark_or_a_missing_directory_is_an_error() -> Result {
    let dir = tempfile::tempdir()?;
    fs::write(dir.path().join(WATERMARK_FILE), "twelve\n")?;
    let err = ParquetExporter::open(dir.path()).unwrap_err();
    assert!(matches!(err, AnalyticsError::Corrupt { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "unexpected content in {}: the watermark is not a sequence number",
            dir.path().join(WATERMARK_FILE).display()
        )
    );

    let missing = dir.path().join("nowhere");
    assert!(daily_revenue(&missing).unwrap_err().is_io());
    // A directory never exported to has no revenue.
    let empty = tempfile::tempdir()?;
    assert!(daily_revenue(empty.path())?.is_empty());
    assert!(top_skus(empty.path(), 5)?.is_empty());
    Ok(())
}
