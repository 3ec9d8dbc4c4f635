//! `TABLE_MAP` events as [`BinlogTable`]s, and row events as [`RowOp`]s against them.
//!
//! A table map carries each column's binlog type and type metadata; its optional metadata
//! (MySQL 8.0.1+, MariaDB 10.5+) adds, with `binlog_row_metadata=MINIMAL`, signedness and
//! character sets, and with `FULL`, column names, ENUM/SET labels and the primary key. ENUM and
//! SET columns are logged as `STRING` with the real type in the first metadata byte; the real
//! type is what [`BinlogColumn::column_type`] reports. Character sets only say whether a string
//! column is binary (charset 63): the bytes in row images are passed on as the server sent them.

use mysql_async::binlog::events::{
    OptionalMetaExtractor, OptionalMetadataField, RowsEventData, TableMapEvent,
};
use mysql_async::binlog::row::BinlogRow;
use mysql_async::consts::ColumnType;

use super::error::BinlogError;
use super::{BinlogColumn, BinlogTable, RowImage, RowOp};

/// How many metadata bytes a column of this binlog type has (`None`: a type row images
/// never carry).
fn metadata_len(raw: ColumnType) -> Option<usize> {
    use ColumnType as T;
    Some(match raw {
        T::MYSQL_TYPE_TINY_BLOB
        | T::MYSQL_TYPE_BLOB
        | T::MYSQL_TYPE_MEDIUM_BLOB
        | T::MYSQL_TYPE_LONG_BLOB
        | T::MYSQL_TYPE_DOUBLE
        | T::MYSQL_TYPE_FLOAT
        | T::MYSQL_TYPE_GEOMETRY
        | T::MYSQL_TYPE_TIME2
        | T::MYSQL_TYPE_DATETIME2
        | T::MYSQL_TYPE_TIMESTAMP2
        | T::MYSQL_TYPE_JSON
        | T::MYSQL_TYPE_VECTOR => 1,
        T::MYSQL_TYPE_VARCHAR
        | T::MYSQL_TYPE_NEWDECIMAL
        | T::MYSQL_TYPE_SET
        | T::MYSQL_TYPE_ENUM
        | T::MYSQL_TYPE_STRING
        | T::MYSQL_TYPE_BIT => 2,
        // VAR_STRING is never in a table map (VARCHAR is), and mysql_common would read two
        // metadata bytes for it that the table map does not have.
        T::MYSQL_TYPE_TYPED_ARRAY | T::MYSQL_TYPE_VAR_STRING => return None,
        _ => 0,
    })
}

/// Reads one column: its real type (`STRING` resolved to `ENUM`/`SET` as the metadata says)
/// and its metadata, checked so that mysql_common can decode row values of it: it indexes the
/// metadata bytes unchecked and subtracts scale from precision (found by flipping bytes of the
/// MySQL 8 fixtures: dozens of panics in mysql_common's value decoding before this check, none
/// after).
fn column(tme: &TableMapEvent<'_>, i: usize) -> Result<(ColumnType, Vec<u8>), String> {
    let raw = match tme.get_raw_column_type(i) {
        Ok(Some(t)) => t,
        Ok(None) => return Err(format!("no type for column {i}")),
        Err(e) => return Err(format!("column {i}: {e}")),
    };
    let want = metadata_len(raw).ok_or_else(|| format!("column {i} has type {raw:?}"))?;
    let meta = tme.get_column_metadata(i).ok_or_else(|| format!("no metadata for column {i}"))?;
    if meta.len() != want {
        return Err(format!("column {i} ({raw:?}) has {} metadata bytes, not {want}", meta.len()));
    }
    let bad = |what: &str| Err(format!("column {i} ({raw:?}): {what}"));
    match (raw, meta) {
        (ColumnType::MYSQL_TYPE_NEWDECIMAL, &[precision, scale])
            if precision == 0 || precision > 65 || scale > 38 || scale > precision =>
        {
            return bad("precision and scale out of range");
        }
        (
            ColumnType::MYSQL_TYPE_TIME2
            | ColumnType::MYSQL_TYPE_DATETIME2
            | ColumnType::MYSQL_TYPE_TIMESTAMP2,
            &[fsp],
        ) if fsp > 6 => return bad("fractional seconds above 6"),
        _ => {}
    }
    let real = if raw == ColumnType::MYSQL_TYPE_STRING {
        match tme.get_column_type(i) {
            Ok(Some(real)) => real,
            Ok(None) => return Err(format!("no type for column {i}")),
            Err(e) => return Err(format!("column {i}: {e}")),
        }
    } else {
        raw
    };
    Ok((real, meta.to_vec()))
}

/// Builds the [`BinlogTable`] a table map describes.
///
/// # Errors
/// [`BinlogError::Decode`] for an unknown column type or optional metadata that does not
/// parse (`position` is the event's, for the message).
pub(crate) fn binlog_table(
    tme: &TableMapEvent<'_>,
    position: u32,
) -> Result<BinlogTable, BinlogError> {
    let err = |reason: String, source: Option<std::io::Error>| {
        BinlogError::decode("TABLE_MAP", position, reason, source)
    };
    let count = usize::try_from(tme.columns_count())
        .map_err(|_| err("column count too large".into(), None))?;
    let mut columns = Vec::new();
    for i in 0..count {
        let (column_type, metadata) = column(tme, i).map_err(|r| err(r, None))?;
        columns.push(BinlogColumn {
            name: String::new(),
            column_type,
            metadata,
            unsigned: false,
            collation: None,
            enum_labels: Vec::new(),
            set_labels: Vec::new(),
            primary_key: false,
        });
    }

    let meta = |e: std::io::Error| err("optional metadata".into(), Some(e));
    let extractor = OptionalMetaExtractor::new(tme.iter_optional_meta()).map_err(meta)?;

    let mut signedness = extractor.iter_signedness();
    let mut charsets = extractor.iter_charset();
    let mut names = extractor.iter_column_name();
    for col in &mut columns {
        if col.column_type.is_numeric_type() {
            col.unsigned = signedness.next().unwrap_or(false);
        }
        if col.column_type.is_character_type() {
            // `iter_charset` is endless with a default charset; one item per string column.
            if let Some(charset) = charsets.next() {
                col.collation = Some(charset.map_err(meta)?);
            }
        }
        if let Some(name) = names.next() {
            col.name = name.map_err(meta)?.name().into_owned();
        }
    }
    for index in extractor.iter_primary_key() {
        let index = index.map_err(meta)?;
        let col = usize::try_from(index).ok().and_then(|i| columns.get_mut(i));
        match col {
            Some(col) => col.primary_key = true,
            None => return Err(err(format!("primary key column {index} out of range"), None)),
        }
    }

    // ENUM and SET labels come one list per ENUM (SET) column, in column order.
    for field in tme.iter_optional_meta() {
        match field.map_err(meta)? {
            OptionalMetadataField::EnumStrValue(lists) => {
                let mut targets = columns.iter_mut().filter(|c| c.column_type.is_enum_type());
                for list in lists.iter_values() {
                    let list = list.map_err(meta)?;
                    let labels = list.values().iter().map(|v| v.value().into_owned()).collect();
                    match targets.next() {
                        Some(col) => col.enum_labels = labels,
                        None => return Err(err("more ENUM label lists than columns".into(), None)),
                    }
                }
            }
            OptionalMetadataField::SetStrValue(lists) => {
                let mut targets = columns.iter_mut().filter(|c| c.column_type.is_set_type());
                for list in lists.iter_values() {
                    let list = list.map_err(meta)?;
                    let labels = list.values().iter().map(|v| v.value().into_owned()).collect();
                    match targets.next() {
                        Some(col) => col.set_labels = labels,
                        None => return Err(err("more SET label lists than columns".into(), None)),
                    }
                }
            }
            _ => {}
        }
    }

    Ok(BinlogTable {
        id: tme.table_id(),
        schema: tme.database_name().into_owned(),
        name: tme.table_name().into_owned(),
        columns,
    })
}

/// The mysql_common name of a rows event, for messages.
pub(crate) fn rows_event_name(rows: &RowsEventData<'_>) -> &'static str {
    match rows {
        RowsEventData::WriteRowsEventV1(_) => "WRITE_ROWS_V1",
        RowsEventData::UpdateRowsEventV1(_) => "UPDATE_ROWS_V1",
        RowsEventData::DeleteRowsEventV1(_) => "DELETE_ROWS_V1",
        RowsEventData::WriteRowsEvent(_) => "WRITE_ROWS",
        RowsEventData::UpdateRowsEvent(_) => "UPDATE_ROWS",
        RowsEventData::DeleteRowsEvent(_) => "DELETE_ROWS",
        RowsEventData::PartialUpdateRowsEvent(_) => "PARTIAL_UPDATE_ROWS",
    }
}

/// Spreads a decoded row over the table's columns: `None` where the image leaves one out
/// (`present(i)` says whether column `i` is in the image).
fn image(
    row: Option<BinlogRow>,
    present: impl Fn(usize) -> bool,
    columns: usize,
) -> Option<RowImage> {
    let mut row = row?;
    let mut out = Vec::with_capacity(columns);
    let mut next = 0;
    for i in 0..columns {
        if present(i) {
            out.push(row.take(next).map(|v| v.into_owned()));
            next += 1;
        } else {
            out.push(None);
        }
    }
    Some(out)
}

/// Decodes a rows event against the table map it refers to.
///
/// The images of a `PARTIAL_UPDATE_ROWS` event (`binlog_row_value_options=PARTIAL_JSON`) are
/// passed on as the server wrote them: a JSON column the statement changed in place holds a
/// [`mysql_async::binlog::value::BinlogValue::JsonDiff`] in the after image, to be applied to
/// the before image's value.
///
/// # Errors
/// [`BinlogError::Decode`] when the event does not match the table map or a row does not
/// parse.
pub(crate) fn row_op(
    rows: &RowsEventData<'_>,
    tme: &TableMapEvent<'_>,
    position: u32,
) -> Result<RowOp, BinlogError> {
    let name = rows_event_name(rows);
    let err = |reason: String, source| BinlogError::decode(name, position, reason, source);
    if rows.num_columns() != tme.columns_count() {
        let reason = format!(
            "{} columns, but the table map of {}.{} has {}",
            rows.num_columns(),
            tme.database_name(),
            tme.table_name(),
            tme.columns_count()
        );
        return Err(err(reason, None));
    }
    let columns = usize::try_from(tme.columns_count())
        .map_err(|_| err("column count too large".into(), None))?;
    let (before_cols, after_cols) = (rows.columns_before_image(), rows.columns_after_image());
    let in_before = |i: usize| before_cols.is_some_and(|bits| bits.get(i).is_some_and(|b| *b));
    let in_after = |i: usize| after_cols.is_some_and(|bits| bits.get(i).is_some_and(|b| *b));
    let mut befores = Vec::new();
    let mut afters = Vec::new();
    // Every row takes at least one byte (its null bitmap); an image that names no column would
    // take none and mysql_common's iterator would yield it forever.
    let most = rows.rows_data().len();
    for (n, row) in rows.rows(tme).enumerate() {
        if n >= most {
            return Err(err("row images that take no bytes (no column in the image)".into(), None));
        }
        let (before, after) = row.map_err(|e| err("row image".into(), Some(e)))?;
        befores.push(image(before, in_before, columns));
        afters.push(image(after, in_after, columns));
    }
    let all = |images: Vec<Option<RowImage>>, what: &str| {
        images
            .into_iter()
            .collect::<Option<Vec<RowImage>>>()
            .ok_or_else(|| err(format!("a row without its {what} image"), None))
    };
    Ok(match rows {
        RowsEventData::WriteRowsEventV1(_) | RowsEventData::WriteRowsEvent(_) => {
            RowOp::Insert(all(afters, "after")?)
        }
        RowsEventData::DeleteRowsEventV1(_) | RowsEventData::DeleteRowsEvent(_) => {
            RowOp::Delete(all(befores, "before")?)
        }
        RowsEventData::UpdateRowsEventV1(_)
        | RowsEventData::UpdateRowsEvent(_)
        | RowsEventData::PartialUpdateRowsEvent(_) => {
            let before = all(befores, "before")?;
            let after = all(afters, "after")?;
            RowOp::Update(before.into_iter().zip(after).collect())
        }
    })
}

#[cfg(test)]
mod tests {
    //! MySQL 8 binlog files captured by other projects (`/work/shared/fixtures/mysql8-binlog`,
    //! provenance in its README), decoded with [`decode_file`], which runs the live stream's
    //! per-event decoder: table maps and row images through this module.

    use std::collections::HashMap;

    use mysql_async::Value;

    use crate::binlog::{BinlogValue, Event, Gtid, RowOp, decode_file};

    /// One value as the tests spell it: `-` left out of the image, `NULL`, numbers, `'text'`,
    /// `x'hex'` for bytes that are not UTF-8 or are control characters.
    fn show(v: &Option<BinlogValue<'static>>) -> String {
        match v {
            None => "-".into(),
            Some(BinlogValue::Value(Value::NULL)) => "NULL".into(),
            Some(BinlogValue::Value(Value::Int(i))) => i.to_string(),
            Some(BinlogValue::Value(Value::UInt(u))) => u.to_string(),
            Some(BinlogValue::Value(Value::Bytes(b))) => match std::str::from_utf8(b) {
                Ok(s) if !s.chars().any(char::is_control) => format!("'{s}'"),
                _ => format!("x'{}'", b.iter().map(|b| format!("{b:02x}")).collect::<String>()),
            },
            Some(other) => format!("{other:?}"),
        }
    }

    fn row(image: &[Option<BinlogValue<'static>>]) -> String {
        format!("({})", image.iter().map(show).collect::<Vec<_>>().join(", "))
    }

    /// A MySQL 8 binlog file of `/work/shared/fixtures/mysql8-binlog`, decoded, one line per
    /// event (`error: …` for an error).
    fn fixture(name: &str) -> (Vec<String>, Vec<Event>) {
        let bytes = std::fs::read(format!("/work/shared/fixtures/mysql8-binlog/{name}"))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut tables: HashMap<u64, String> = HashMap::new();
        let mut lines = Vec::new();
        let mut events = Vec::new();
        for result in decode_file(&bytes) {
            let event = match result {
                Ok(event) => event,
                Err(e) => {
                    lines.push(format!("error: {e}"));
                    continue;
                }
            };
            let name = |id: &u64| tables.get(id).cloned().unwrap_or_default();
            lines.push(match &event {
                Event::Begin { gtid: Gtid::Mysql(u, n), .. } => format!("begin {u}:{n}"),
                Event::Begin { gtid, .. } => format!("begin {gtid:?}"),
                Event::TableMap(t) => {
                    tables.insert(t.id, t.name.clone());
                    format!("map {}.{}", t.schema, t.name)
                }
                Event::Rows { table_id, op: RowOp::Insert(r) } => {
                    format!("insert {} x{}", name(table_id), r.len())
                }
                Event::Rows { table_id, op: RowOp::Update(r) } => {
                    format!("update {} x{}", name(table_id), r.len())
                }
                Event::Rows { table_id, op: RowOp::Delete(r) } => {
                    format!("delete {} x{}", name(table_id), r.len())
                }
                Event::Commit { .. } => "commit".into(),
                Event::Statement { sql, .. } => format!(
                    "statement {}",
                    sql.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
                ),
                Event::XaPrepared { xid, .. } => format!("xa prepared {xid}"),
                Event::XaEnded { xid, committed, .. } => format!("xa ended {xid} {committed}"),
                Event::Idle => "idle".into(),
            });
            events.push(event);
        }
        (lines, events)
    }

    fn rows_of(events: &[Event]) -> Vec<&RowOp> {
        events
            .iter()
            .filter_map(|e| if let Event::Rows { op, .. } = e { Some(op) } else { None })
            .collect()
    }

    const ANONYMOUS: &str = "error: a transaction without a GTID (gtid_mode is not ON): SET GLOBAL gtid_mode = ON and enforce_gtid_consistency = ON on the source";

    /// The 298-digit VARCHAR value of `mysql-enum-string-set.000001`, as rust_mysql_common's
    /// `binlog_event_roundtrip` asserts it (`src/binlog/mod.rs` of mysql_common 0.37.3).
    const LONG_DIGITS: &str = "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456780123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456780123456789012345678901234567890123456789";

    /// `mysql-enum-string-set.000001` (MySQL 8.0.28, `binlog_row_metadata=FULL`): WRITE, UPDATE
    /// and DELETE_ROWS v2. Expected values: rust_mysql_common's `binlog_event_roundtrip`
    /// assertions, which the fixture README quotes (insert f1 = "0123456789"×10, f2 the long digit
    /// string, f3 enum index 1, f4 set bits 0b101, f5 "0123456789"; update to field1, field_2, 2,
    /// 0b1010 and the long digit string; the delete's before image is that after image).
    #[test]
    fn mysql8_rows_v2_decode_to_the_values_the_source_project_asserts() {
        let (lines, events) = fixture("rust_mysql_common/mysql-enum-string-set.000001");
        let uuid = "93e95066-a2f4-11ec-9b69-9657f0ae95e2";
        assert_eq!(
            lines,
            [
                format!("begin {uuid}:1"),
                "statement ALTER USER 'root'@'localhost'".into(),
                format!("begin {uuid}:2"),
                "statement CREATE TABLE t(f1".into(),
                format!("begin {uuid}:3"),
                "map mysql.t".into(),
                "insert t x1".into(),
                "commit".into(),
                format!("begin {uuid}:4"),
                "update t x1".into(),
                "commit".into(),
                format!("begin {uuid}:5"),
                "delete t x1".into(),
                "commit".into(),
            ]
        );
        let Some(Event::TableMap(t)) = events.get(5) else { panic!("{events:?}") };
        let cols: Vec<(&str, String, &[String], &[String])> = t
            .columns
            .iter()
            .map(|c| {
                (
                    c.name.as_str(),
                    format!("{:?}", c.column_type),
                    &c.enum_labels[..],
                    &c.set_labels[..],
                )
            })
            .collect();
        let none: &[String] = &[];
        let enum_labels = ["var1", "variant2", "foo"].map(String::from);
        let set_labels = ["one", "two", "three", "four"].map(String::from);
        assert_eq!(
            cols,
            [
                ("f1", "MYSQL_TYPE_STRING".into(), none, none),
                ("f2", "MYSQL_TYPE_VARCHAR".into(), none, none),
                ("f3", "MYSQL_TYPE_ENUM".into(), &enum_labels[..], none),
                ("f4", "MYSQL_TYPE_SET".into(), none, &set_labels[..]),
                ("f5", "MYSQL_TYPE_BLOB".into(), none, none),
            ]
        );
        let long = format!("'{LONG_DIGITS}'");
        let ten = "0123456789";
        let [RowOp::Insert(ins), RowOp::Update(upd), RowOp::Delete(del)] = rows_of(&events)[..]
        else {
            panic!("{events:?}")
        };
        let inserted = &ins[0];
        assert_eq!(show(&inserted[0]), format!("'{}'", ten.repeat(10)));
        assert_eq!(show(&inserted[1]), long);
        assert_eq!(
            inserted[2..].iter().map(show).collect::<Vec<_>>(),
            ["1", "x'05'", "'0123456789'"]
        );
        let (before, after) = &upd[0];
        assert_eq!(before, inserted);
        assert_eq!(
            after[..4].iter().map(show).collect::<Vec<_>>(),
            ["'field1'", "'field_2'", "2", "x'0a'"]
        );
        assert_eq!(show(&after[4]), long);
        assert_eq!(&del[0], after);
    }

    /// `json.binlog.000001` (MySQL 8.0.22, `binlog_row_value_options=PARTIAL_JSON`, minimal
    /// images): the PARTIAL_UPDATE_ROWS event keeps the server's JSON diff in the after image.
    /// The source project asserts only that the file parses; the expected diff is checked against
    /// the server itself: the after image's generated column `age` (`json_col->'$.age'`) holds the
    /// value the diff writes to `$.age`, and the full UPDATE_ROWS before it took `age` 24 → 25.
    #[test]
    fn mysql8_partial_update_rows_carry_the_json_diff_the_server_wrote() {
        let (lines, events) = fixture("rust_mysql_common/json.binlog.000001");
        let mut expected = vec![ANONYMOUS, "statement ALTER USER 'root'@'localhost'"];
        expected.extend([ANONYMOUS, "statement CREATE TABLE t(id", ANONYMOUS, "map mysql.t"]);
        expected.extend(["insert t x1", "commit", ANONYMOUS, "insert t x1", "commit", ANONYMOUS]);
        expected.extend(["insert t x1", "commit", ANONYMOUS, "insert t x3", "commit", ANONYMOUS]);
        expected.extend(["update t x6", "commit", ANONYMOUS, "update t x6", "commit"]);
        assert_eq!(lines, expected);

        let updates: Vec<&RowOp> =
            rows_of(&events).into_iter().filter(|op| matches!(op, RowOp::Update(_))).collect();
        let [RowOp::Update(full), RowOp::Update(partial)] = updates[..] else {
            panic!("{updates:?}")
        };
        assert_eq!((show(&full[0].0[3]), show(&full[0].1[3])), ("24".into(), "25".into()));
        for (before, after) in partial {
            // Minimal before image: the key only.
            assert!(matches!(before[..], [Some(_), None, None, None]), "{before:?}");
            let Some(BinlogValue::JsonDiff(diffs)) = &after[1] else { panic!("{after:?}") };
            let [diff] = &diffs[..] else { panic!("{diffs:?}") };
            assert_eq!(diff.path_str(), "$.age");
            assert_eq!(diff.operation(), mysql_async::binlog::jsondiff::JsonDiffOperation::REPLACE);
            let written = diff.value().map(|v| format!("{v:?}")).unwrap_or_default();
            assert_eq!(written, show(&after[3]), "{after:?}");
        }
    }

    /// `transaction_compression.000001` (MySQL 8.0.32): one zstd TRANSACTION_PAYLOAD. The source
    /// project asserts the inner events are QUERY (BEGIN), TABLE_MAP, WRITE_ROWS, XID in that
    /// order and nothing after: they come out as the table map, the insert and the commit (the
    /// transaction is anonymous: an error stands for its missing GTID), then the ROTATE.
    #[test]
    fn mysql8_transaction_payload_expands_in_order() {
        let (lines, events) = fixture("rust_mysql_common/transaction_compression.000001");
        assert_eq!(lines, [ANONYMOUS, "map test.tb1", "insert tb1 x1", "commit", "idle"]);
        assert_eq!(
            rows_of(&events),
            [&RowOp::Insert(vec![vec![Some(BinlogValue::Value(Value::Int(1)))]])]
        );

        // mysql-binlog-connector-java's compressed file: 5 top-level events (its test), the
        // payload holding one UPDATE of demo.movies.
        let (lines, _) = fixture("mysql-binlog-connector-java/mysql-bin.compressed");
        assert_eq!(lines, [ANONYMOUS, "map demo.movies", "update movies x1", "commit", "idle"]);
    }

    /// `mysql-bin.000057` (MySQL 8.0.31, GTID mode): a DDL, then two TRANSACTION_PAYLOADs. The
    /// expected rows are the ones the payloads' ROWS_QUERY events state (fixture README):
    /// `insert into b values(1)`; `update test_table_3 set enum_field='large', set_field='c',
    /// product_item_2='product_3_value' where product_id=55555`; `insert into test_table_3
    /// values(6666, …)`.
    #[test]
    fn mysql8_gtid_transactions_in_payloads_keep_their_gtids_and_rows() {
        let (lines, events) = fixture("mysql-binlog-connector-rust/mysql-bin.000057");
        let uuid = "76f3e7be-6720-11ed-9cad-0242ac110002";
        assert_eq!(
            lines,
            [
                format!("begin {uuid}:11"),
                "statement create table b(id".into(),
                format!("begin {uuid}:12"),
                "map a.b".into(),
                "insert b x1".into(),
                "commit".into(),
                format!("begin {uuid}:13"),
                "map a.test_table_3".into(),
                "update test_table_3 x1".into(),
                "insert test_table_3 x1".into(),
                "commit".into(),
            ]
        );
        let [RowOp::Insert(b), RowOp::Update(upd), RowOp::Insert(ins)] = rows_of(&events)[..]
        else {
            panic!("{events:?}")
        };
        assert_eq!(row(&b[0]), "(1)");
        let (before, after) = &upd[0];
        assert_eq!((show(&before[0]), show(&after[0])), ("55555".into(), "55555".into()));
        assert_eq!(
            (show(&before[10]), show(&after[10])),
            ("'product_item_2_value'".into(), "'product_3_value'".into())
        );
        assert_eq!(show(&ins[0][0]), "6666");
    }

    /// The events of a binlog file, each as its bytes (header, body, checksum).
    fn split_events(file: &[u8]) -> Vec<Vec<u8>> {
        let mut rest = &file[4..];
        let mut out = Vec::new();
        while rest.len() >= 19 {
            let size = u32::from_le_bytes(rest[9..13].try_into().unwrap()) as usize;
            out.push(rest[..size].to_vec());
            rest = &rest[size..];
        }
        out
    }

    /// One event with a made-up header (log position 1) and a zero CRC32 (not verified).
    fn synthetic(type_code: u8, body: &[u8]) -> Vec<u8> {
        let size = u32::try_from(19 + body.len() + 4).unwrap();
        let mut e = Vec::new();
        e.extend(1_700_000_000u32.to_le_bytes());
        e.push(type_code);
        e.extend(1u32.to_le_bytes());
        e.extend(size.to_le_bytes());
        e.extend(1u32.to_le_bytes());
        e.extend(0u16.to_le_bytes());
        e.extend(body);
        e.extend([0; 4]);
        e
    }

    /// A QUERY event in database `mysql` (MySQL's post-header: thread id, time, schema length,
    /// error code, status variables length).
    fn query_event(sql: &str) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend(7u32.to_le_bytes());
        b.extend(0u32.to_le_bytes());
        b.push(5);
        b.extend(0u16.to_le_bytes());
        b.extend(0u16.to_le_bytes());
        b.extend(b"mysql\0");
        b.extend(sql.as_bytes());
        synthetic(0x02, &b)
    }

    /// An XA_PREPARE event for gtrid `gtrid`, format id 1.
    fn xa_prepare_event(one_phase: bool, gtrid: &[u8]) -> Vec<u8> {
        let mut b = vec![u8::from(one_phase)];
        b.extend(1i32.to_le_bytes());
        b.extend(u32::try_from(gtrid.len()).unwrap().to_le_bytes());
        b.extend(0u32.to_le_bytes());
        b.extend(gtrid);
        synthetic(0x26, &b)
    }

    /// MySQL XA and `CREATE TABLE … SELECT` have no MySQL server here: the events are MySQL 8's
    /// real FORMAT_DESCRIPTION, GTID, TABLE_MAP and WRITE_ROWS events of
    /// `mysql-enum-string-set.000001`, with the QUERY and XA_PREPARE events around them written
    /// in MySQL's layout (`XA START X'7831',X'',1` as MySQL's `XID::serialize` logs it).
    #[test]
    fn mysql_xa_and_create_select_shapes_decode_to_one_transaction_each() {
        let file = std::fs::read(
            "/work/shared/fixtures/mysql8-binlog/rust_mysql_common/mysql-enum-string-set.000001",
        )
        .unwrap();
        let events = split_events(&file);
        let of = |t: u8| events.iter().filter(|e| e[4] == t).cloned().collect::<Vec<_>>();
        let (fde, gtids, maps, writes) = (&of(0x0f)[0], of(0x21), of(0x13), of(0x1e));
        let (tm, w2) = (&maps[0], &writes[0]);
        let mut bin = vec![0xfe, b'b', b'i', b'n'];
        for e in [
            fde.clone(),
            // XA PREPARE under GTID :3, XA COMMIT under :4.
            gtids[2].clone(),
            query_event("XA START X'7831',X'',1"),
            tm.clone(),
            w2.clone(),
            query_event("XA END X'7831',X'',1"),
            xa_prepare_event(false, b"x1"),
            gtids[3].clone(),
            query_event("XA COMMIT X'7831',X'',1"),
            // XA COMMIT … ONE PHASE under :5.
            gtids[4].clone(),
            query_event("XA START X'7832',X'',1"),
            tm.clone(),
            w2.clone(),
            query_event("XA END X'7832',X'',1"),
            xa_prepare_event(true, b"x2"),
            // CREATE TABLE … SELECT (MySQL 8.0.21+: one GTID, the statement, then its rows).
            gtids[0].clone(),
            query_event("BEGIN"),
            query_event("CREATE TABLE t2 (f1 CHAR(128)) START TRANSACTION"),
            tm.clone(),
            w2.clone(),
            synthetic(0x10, &9u64.to_le_bytes()),
        ] {
            bin.extend(e);
        }
        let mut lines = Vec::new();
        for event in decode_file(&bin) {
            lines.push(match event.unwrap() {
                Event::Begin { gtid: Gtid::Mysql(_, n), .. } => format!("begin {n}"),
                Event::TableMap(t) => format!("map {}", t.name),
                Event::Rows { op: RowOp::Insert(rows), .. } => format!("insert x{}", rows.len()),
                Event::Statement { sql, .. } => format!("statement {sql}"),
                Event::XaPrepared { xid, gtid: Some(Gtid::Mysql(_, n)) } => {
                    format!("prepared {xid} at {n}")
                }
                Event::XaEnded { xid, prepared: Some(Gtid::Mysql(_, n)), committed: true } => {
                    format!("committed {xid} prepared at {n}")
                }
                other => format!("{other:?}"),
            });
        }
        assert_eq!(
            lines,
            [
                "prepared X'7831',X'',1 at 3",
                "begin 4",
                "committed X'7831',X'',1 prepared at 3",
                "map t",
                "insert x1",
                "Commit { timestamp: 1700000000 }",
                "begin 5",
                "map t",
                "insert x1",
                "Commit { timestamp: 1700000000 }",
                "begin 1",
                "statement CREATE TABLE t2 (f1 CHAR(128)) START TRANSACTION",
                "begin 1",
                "insert x1",
                "Commit { timestamp: 1700000000 }",
            ]
        );
    }

    /// MySQL 8.4+ tagged GTIDs cannot be a MOLT cursor: a clear error, not a panic or a wrong
    /// GTID.
    #[test]
    fn mysql_tagged_gtids_are_refused_by_name() {
        let (lines, _) = fixture("rust_mysql_common/binlog_transaction_with_GTID_TAG.000001");
        assert!(lines[0].starts_with("error: a tagged GTID"), "{lines:?}");
        assert!(!lines.iter().any(|l| l.starts_with("begin")), "{lines:?}");
    }

    /// Every fixture cut short at every length decodes without a panic (the framing checks each
    /// event's size before mysql_common reads it); cut inside an event, it ends with an error.
    #[test]
    fn truncated_binlog_files_never_panic() {
        for name in [
            "rust_mysql_common/mysql-enum-string-set.000001",
            "rust_mysql_common/transaction_compression.000001",
            "mysql-binlog-connector-rust/mysql-bin.000057",
        ] {
            let bytes =
                std::fs::read(format!("/work/shared/fixtures/mysql8-binlog/{name}")).unwrap();
            let mut cut_inside = 0;
            for len in 0..bytes.len() {
                if decode_file(&bytes[..len])
                    .last()
                    .is_some_and(|r| r.as_ref().is_err_and(|e| e.to_string().contains("cut short")))
                {
                    cut_inside += 1;
                }
            }
            assert!(cut_inside > bytes.len() / 2, "{name}: {cut_inside} of {}", bytes.len());
        }
    }

    /// Every byte of every fixture flipped (two ways), one at a time: errors, never a panic or a
    /// hang. Before the checks in `check_transaction_payload` and the table map's column check,
    /// mysql_common 0.37 panicked on dozens of these (TRANSACTION_PAYLOAD headers, row values read
    /// with too little column metadata), and a row image naming no column looped forever.
    #[test]
    fn corrupted_binlog_files_never_panic() {
        let dir = std::path::Path::new("/work/shared/fixtures/mysql8-binlog");
        for sub in
            ["rust_mysql_common", "mysql-binlog-connector-java", "mysql-binlog-connector-rust"]
        {
            for file in std::fs::read_dir(dir.join(sub)).unwrap() {
                let bytes = std::fs::read(file.unwrap().path()).unwrap();
                for i in 4..bytes.len() {
                    for mask in [0xff, 0x01] {
                        let mut corrupt = bytes.clone();
                        corrupt[i] ^= mask;
                        let _ = decode_file(&corrupt);
                    }
                }
            }
        }
    }
}
