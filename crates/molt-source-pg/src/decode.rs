//! A decoder for pgoutput (logical replication protocol version 1) messages.
//!
//! Every read is bounds-checked: malformed or truncated bytes give a [`DecodeError`], never a
//! panic (fuzzed by `fuzz/fuzz_targets/pgoutput_decode.rs`). Values stay in PostgreSQL's text
//! form; `'u'` marks an unchanged TOAST value that the server did not send.

use std::fmt;

/// A column value in a tuple.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Datum {
    /// SQL NULL.
    Null,
    /// An unchanged TOASTed value the server left out (UPDATE without REPLICA IDENTITY FULL).
    Unchanged,
    /// Text form of the value.
    Text(String),
}

/// A column of a relation message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelationColumn {
    /// Part of the replica identity (the key).
    pub key: bool,
    /// Name.
    pub name: String,
    /// Type OID.
    pub type_oid: u32,
    /// Type modifier.
    pub type_mod: i32,
}

/// A relation (table) description, sent before the first change to it in a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relation {
    /// Relation OID.
    pub id: u32,
    /// Schema.
    pub namespace: String,
    /// Table name.
    pub name: String,
    /// `d` default, `n` nothing, `f` full, `i` index.
    pub replica_identity: u8,
    /// Columns in order.
    pub columns: Vec<RelationColumn>,
}

/// One decoded message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// Transaction start.
    Begin {
        /// LSN of the commit record.
        final_lsn: u64,
        /// Commit time, microseconds since 2000-01-01.
        commit_time: i64,
        /// Transaction id.
        xid: u32,
    },
    /// Transaction end.
    Commit {
        /// LSN of the commit record.
        commit_lsn: u64,
        /// End LSN of the transaction: where a restart resumes after it.
        end_lsn: u64,
        /// Commit time, microseconds since 2000-01-01.
        commit_time: i64,
    },
    /// Relation description.
    Relation(Relation),
    /// A type description (for non-builtin types); carries nothing we need.
    Type {
        /// Type OID.
        id: u32,
    },
    /// Inserted row.
    Insert {
        /// Relation OID.
        relation: u32,
        /// New tuple.
        new: Vec<Datum>,
    },
    /// Updated row.
    Update {
        /// Relation OID.
        relation: u32,
        /// Old key (`K`) or old row (`O`, REPLICA IDENTITY FULL), when the server sent one.
        old: Option<Vec<Datum>>,
        /// New tuple.
        new: Vec<Datum>,
    },
    /// Deleted row.
    Delete {
        /// Relation OID.
        relation: u32,
        /// Old key or old row.
        old: Vec<Datum>,
    },
    /// TRUNCATE of one or more relations.
    Truncate {
        /// Relation OIDs.
        relations: Vec<u32>,
        /// Bit 1 CASCADE, bit 2 RESTART IDENTITY.
        options: u8,
    },
    /// Replication origin.
    Origin,
    /// Logical decoding message (`pg_logical_emit_message`).
    LogicalMessage {
        /// Prefix.
        prefix: String,
    },
}

/// Why bytes could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The message ended early.
    #[error("pgoutput message {tag:?} ends after {at} bytes")]
    Truncated {
        /// Message tag.
        tag: char,
        /// Offset reached.
        at: usize,
    },
    /// An unknown message or tuple tag.
    #[error("unknown pgoutput {what} tag {tag:?}")]
    UnknownTag {
        /// Message or tuple part.
        what: &'static str,
        /// The byte.
        tag: char,
    },
    /// A string was not UTF-8.
    #[error("pgoutput message {tag:?} holds text that is not UTF-8")]
    NotUtf8 {
        /// Message tag.
        tag: char,
    },
    /// The message is empty.
    #[error("empty pgoutput message")]
    Empty,
}

struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
    tag: char,
}

impl Reader<'_> {
    fn err(&self) -> DecodeError {
        DecodeError::Truncated { tag: self.tag, at: self.at }
    }
    fn take(&mut self, n: usize) -> Result<&[u8], DecodeError> {
        let end = self.at.checked_add(n).ok_or_else(|| self.err())?;
        let s = self.buf.get(self.at..end).ok_or_else(|| self.err())?;
        self.at = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, DecodeError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, DecodeError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64, DecodeError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }
    fn cstr(&mut self) -> Result<String, DecodeError> {
        let rest = self.buf.get(self.at..).ok_or_else(|| self.err())?;
        let nul = rest.iter().position(|b| *b == 0).ok_or_else(|| self.err())?;
        let s = std::str::from_utf8(&rest[..nul])
            .map_err(|_| DecodeError::NotUtf8 { tag: self.tag })?;
        self.at += nul + 1;
        Ok(s.to_owned())
    }
    fn tuple(&mut self) -> Result<Vec<Datum>, DecodeError> {
        let n = self.u16()?;
        // Each column needs at least one byte: refuse counts the message cannot hold.
        if usize::from(n) > self.buf.len().saturating_sub(self.at) {
            return Err(self.err());
        }
        let mut out = Vec::with_capacity(usize::from(n));
        for _ in 0..n {
            out.push(match self.u8()? {
                b'n' => Datum::Null,
                b'u' => Datum::Unchanged,
                b't' | b'b' => {
                    let len = self.u32()? as usize;
                    let bytes = self.take(len)?;
                    Datum::Text(
                        String::from_utf8(bytes.to_vec())
                            .map_err(|_| DecodeError::NotUtf8 { tag: self.tag })?,
                    )
                }
                other => {
                    return Err(DecodeError::UnknownTag {
                        what: "tuple column",
                        tag: char::from(other),
                    });
                }
            });
        }
        Ok(out)
    }
}

/// Decodes one pgoutput message.
///
/// # Errors
/// [`DecodeError`] for truncated, unknown or non-UTF-8 content.
pub fn decode(buf: &[u8]) -> Result<Message, DecodeError> {
    let tag = char::from(*buf.first().ok_or(DecodeError::Empty)?);
    let mut r = Reader { buf, at: 1, tag };
    Ok(match tag {
        'B' => Message::Begin { final_lsn: r.u64()?, commit_time: r.u64()? as i64, xid: r.u32()? },
        'C' => {
            let _flags = r.u8()?;
            Message::Commit {
                commit_lsn: r.u64()?,
                end_lsn: r.u64()?,
                commit_time: r.u64()? as i64,
            }
        }
        'O' => {
            let _lsn = r.u64()?;
            let _name = r.cstr()?;
            Message::Origin
        }
        'R' => {
            let id = r.u32()?;
            let namespace = r.cstr()?;
            let name = r.cstr()?;
            let replica_identity = r.u8()?;
            let n = r.u16()?;
            let mut columns = Vec::new();
            for _ in 0..n {
                let flags = r.u8()?;
                let col_name = r.cstr()?;
                columns.push(RelationColumn {
                    key: flags & 1 == 1,
                    name: col_name,
                    type_oid: r.u32()?,
                    type_mod: r.u32()? as i32,
                });
            }
            Message::Relation(Relation { id, namespace, name, replica_identity, columns })
        }
        'Y' => {
            let id = r.u32()?;
            let _ns = r.cstr()?;
            let _name = r.cstr()?;
            Message::Type { id }
        }
        'I' => {
            let relation = r.u32()?;
            match r.u8()? {
                b'N' => Message::Insert { relation, new: r.tuple()? },
                other => {
                    return Err(DecodeError::UnknownTag {
                        what: "insert part",
                        tag: char::from(other),
                    });
                }
            }
        }
        'U' => {
            let relation = r.u32()?;
            let (old, new) = match r.u8()? {
                b'K' | b'O' => {
                    let old = r.tuple()?;
                    match r.u8()? {
                        b'N' => (Some(old), r.tuple()?),
                        other => {
                            return Err(DecodeError::UnknownTag {
                                what: "update part",
                                tag: char::from(other),
                            });
                        }
                    }
                }
                b'N' => (None, r.tuple()?),
                other => {
                    return Err(DecodeError::UnknownTag {
                        what: "update part",
                        tag: char::from(other),
                    });
                }
            };
            Message::Update { relation, old, new }
        }
        'D' => {
            let relation = r.u32()?;
            match r.u8()? {
                b'K' | b'O' => Message::Delete { relation, old: r.tuple()? },
                other => {
                    return Err(DecodeError::UnknownTag {
                        what: "delete part",
                        tag: char::from(other),
                    });
                }
            }
        }
        'T' => {
            let n = r.u32()?;
            let options = r.u8()?;
            if n as usize > buf.len() / 4 {
                return Err(r.err());
            }
            let mut relations = Vec::with_capacity(n as usize);
            for _ in 0..n {
                relations.push(r.u32()?);
            }
            Message::Truncate { relations, options }
        }
        'M' => {
            let _flags = r.u8()?;
            let _lsn = r.u64()?;
            let prefix = r.cstr()?;
            let len = r.u32()? as usize;
            let _content = r.take(len)?;
            Message::LogicalMessage { prefix }
        }
        other => return Err(DecodeError::UnknownTag { what: "message", tag: other }),
    })
}

impl fmt::Display for Datum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Datum::Null => f.write_str("NULL"),
            Datum::Unchanged => f.write_str("(unchanged)"),
            Datum::Text(t) => f.write_str(t),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tuple(vals: &[Option<&str>]) -> Vec<u8> {
        let mut b = (vals.len() as u16).to_be_bytes().to_vec();
        for v in vals {
            match v {
                None => b.push(b'n'),
                Some(t) => {
                    b.push(b't');
                    b.extend((t.len() as u32).to_be_bytes());
                    b.extend(t.as_bytes());
                }
            }
        }
        b
    }

    #[test]
    fn decodes_each_message() {
        let mut rel = vec![b'R'];
        rel.extend(16384u32.to_be_bytes());
        rel.extend(b"public\0t\0");
        rel.push(b'd');
        rel.extend(2u16.to_be_bytes());
        rel.push(1);
        rel.extend(b"id\0");
        rel.extend(20u32.to_be_bytes());
        rel.extend((-1i32).to_be_bytes());
        rel.push(0);
        rel.extend(b"v\0");
        rel.extend(25u32.to_be_bytes());
        rel.extend((-1i32).to_be_bytes());
        let Message::Relation(r) = decode(&rel).unwrap() else { panic!() };
        assert_eq!((r.namespace.as_str(), r.name.as_str(), r.columns.len()), ("public", "t", 2));
        assert!(r.columns[0].key && !r.columns[1].key);

        let mut ins = vec![b'I'];
        ins.extend(16384u32.to_be_bytes());
        ins.push(b'N');
        ins.extend(tuple(&[Some("1"), None]));
        assert_eq!(
            decode(&ins).unwrap(),
            Message::Insert { relation: 16384, new: vec![Datum::Text("1".into()), Datum::Null] }
        );

        let mut upd = vec![b'U'];
        upd.extend(16384u32.to_be_bytes());
        upd.push(b'K');
        upd.extend(tuple(&[Some("1"), None]));
        upd.push(b'N');
        let mut new = tuple(&[Some("2")]);
        new[0..2].copy_from_slice(&2u16.to_be_bytes());
        new.push(b'u');
        upd.extend(new);
        let Message::Update { old, new, .. } = decode(&upd).unwrap() else { panic!() };
        assert_eq!(old.unwrap()[0], Datum::Text("1".into()));
        assert_eq!(new, vec![Datum::Text("2".into()), Datum::Unchanged]);

        let mut trunc = vec![b'T'];
        trunc.extend(2u32.to_be_bytes());
        trunc.push(1);
        trunc.extend(1u32.to_be_bytes());
        trunc.extend(2u32.to_be_bytes());
        assert_eq!(
            decode(&trunc).unwrap(),
            Message::Truncate { relations: vec![1, 2], options: 1 }
        );

        let mut commit = vec![b'C', 0];
        commit.extend(10u64.to_be_bytes());
        commit.extend(20u64.to_be_bytes());
        commit.extend(30u64.to_be_bytes());
        assert_eq!(
            decode(&commit).unwrap(),
            Message::Commit { commit_lsn: 10, end_lsn: 20, commit_time: 30 }
        );
    }

    #[test]
    fn never_panics_on_truncations_or_garbage() {
        let mut ins = vec![b'I'];
        ins.extend(1u32.to_be_bytes());
        ins.push(b'N');
        ins.extend(tuple(&[Some("hello"), None, Some("x")]));
        for cut in 0..ins.len() {
            assert!(decode(&ins[..cut]).is_err(), "cut at {cut}");
        }
        let mut state = 0x1234_5678u32;
        for _ in 0..20_000 {
            let len = (state % 64) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 17;
                    state ^= state << 5;
                    (state % 256) as u8
                })
                .collect();
            let _ = decode(&bytes);
        }
        let mut huge = vec![b'T'];
        huge.extend(u32::MAX.to_be_bytes());
        huge.push(0);
        assert!(decode(&huge).is_err());
    }
}
