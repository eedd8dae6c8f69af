//! Curve's id counters in etcd, and their advance after a restore (reconcile/restore.rs).
//!
//! Curve v1.2.6 hands out inode (file) ids and chunk ids from two counters, each an
//! `EtcdIdGenerator` (C:src/mds/nameserver2/idgenerator/etcd_id_generator.cpp:31-77):
//! - the keys are `04` (`INODESTOREKEY`) and `05` (`CHUNKSTOREKEY`)
//!   (C:src/common/namespace_define.h:35,37);
//! - the value is the last id of the last bundle taken, in decimal (`EncodeID` is
//!   `std::to_string`, `DecodeID` `std::stoull`: C:src/mds/nameserver2/helper/namespace_helper.cpp:91-98);
//! - a bundle is 1000 ids (`INODEBUNDLEALLOCATED`, `CHUNKBUNDLEALLOCATED`:
//!   C:src/mds/nameserver2/idgenerator/inode_id_generator.h:39, chunk_id_generator.h:39): the
//!   MDS reads the value `alloc`, writes `alloc + 1000` and hands out `alloc+1 ..= alloc+1000`
//!   from memory (etcd_id_generator.cpp:43-76); so every id ever handed out is at most the
//!   stored value;
//! - an absent key counts as the initial value: 2 for inodes (`USERSTARTINODEID`,
//!   C:src/mds/common/mds_define.h:137), 0 for chunks (`CHUNKINITIALIZE`,
//!   chunk_id_generator.h:38);
//! - both ids are `uint64_t` (C:src/mds/common/mds_define.h:119-120).
//!
//! After a restore the counters hold the snapshot's values, while ids up to the lost etcd's
//! values may already name files and chunk files on the ChunkServers. The margin: a chunk id
//! is taken per chunk of every segment the MDS allocates (chunk_allocator.cpp:78-87), one per
//! 16 MiB chunk (`mds.curvefs.defaultChunkSize`, C:conf/mds.conf:169). [`ADVANCE_MARGIN`] =
//! 2^40 ids is 2^40 × 16 MiB = 16 EiB of segments allocated after the snapshot: at a sustained
//! 10 GiB/s of first writes that is 54 years, far beyond any snapshot's age and any cluster's
//! capacity (segments are allocated only on first write). File ids are taken one per file or
//! snapshot created (curvefs.cpp:287,1175,1599), far fewer. The 64-bit space holds 2^24 such
//! advances. The MDS may also hold up to one bundle (1000 ids) in memory past the stored value
//! taken before the snapshot; those are below the snapshot's value plus 1000, well inside the
//! margin.

use etcd_client::{Client, Compare, CompareOp, TxnOp};

use super::conn::bounded;
use crate::api::{CounterAdvance, CountersAdvance};

/// Key of the inode (file) id counter.
pub const INODE_COUNTER_KEY: &str = "04";
/// Key of the chunk id counter.
pub const CHUNK_COUNTER_KEY: &str = "05";
/// What an absent `04` counts as (`USERSTARTINODEID`).
pub const INODE_INITIAL: u64 = 2;
/// What an absent `05` counts as (`CHUNKINITIALIZE`).
pub const CHUNK_INITIAL: u64 = 0;
/// How far a restore advances each counter (derivation in the module's doc).
pub const ADVANCE_MARGIN: u64 = 1 << 40;

/// The two counters as etcd holds them: the raw values (absent: the key does not exist) and
/// the revision of the read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CounterReading {
    pub inode: Option<String>,
    pub chunk: Option<String>,
    pub revision: i64,
}

/// Curve's encoding of a counter: decimal digits. Anything else is refused (Curve's `stoull`
/// would read a prefix; the operator never guesses).
pub fn decode(key: &str, value: &str) -> Result<u64, String> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "etcd key {key} holds {value:?}, not Curve's decimal id counter"
        ));
    }
    value
        .parse()
        .map_err(|_| format!("etcd key {key} holds {value}, beyond a 64-bit id"))
}

pub fn encode(value: u64) -> String {
    value.to_string()
}

fn advance_one(key: &str, raw: Option<&str>, initial: u64) -> Result<CounterAdvance, String> {
    let from = raw.map(|v| decode(key, v)).transpose()?;
    let to = (from.unwrap_or(initial))
        .checked_add(ADVANCE_MARGIN)
        .ok_or_else(|| format!("etcd key {key}: advancing {from:?} would overflow 64 bits"))?;
    Ok(CounterAdvance { from, to })
}

/// The advance of both counters from what was read.
pub fn plan(reading: &CounterReading) -> Result<CountersAdvance, String> {
    Ok(CountersAdvance {
        inode: advance_one(INODE_COUNTER_KEY, reading.inode.as_deref(), INODE_INITIAL)?,
        chunk: advance_one(CHUNK_COUNTER_KEY, reading.chunk.as_deref(), CHUNK_INITIAL)?,
    })
}

/// How the counters stand against a planned advance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdvanceProgress {
    /// Both hold the planned values: done.
    Done,
    /// Both hold the values the plan was made from: send it.
    NotYet,
    /// Something else: plan again from what they hold.
    Moved,
}

pub fn progress(reading: &CounterReading, planned: &CountersAdvance) -> AdvanceProgress {
    let holds =
        |raw: &Option<String>, value: Option<u64>| raw.as_deref() == value.map(encode).as_deref();
    let pair = [
        (&reading.inode, &planned.inode),
        (&reading.chunk, &planned.chunk),
    ];
    if pair.iter().all(|(raw, c)| holds(raw, Some(c.to))) {
        AdvanceProgress::Done
    } else if pair.iter().all(|(raw, c)| holds(raw, c.from)) {
        AdvanceProgress::NotYet
    } else {
        AdvanceProgress::Moved
    }
}

/// A linearizable read of both counters.
pub(crate) async fn read(client: &Client) -> Result<CounterReading, String> {
    let mut kv = client.kv_client();
    let txn = etcd_client::Txn::new().and_then([
        TxnOp::get(INODE_COUNTER_KEY, None),
        TxnOp::get(CHUNK_COUNTER_KEY, None),
    ]);
    let resp = bounded(kv.txn(txn)).await?;
    let revision = (resp.header().map(|h| h.revision())).ok_or("read answer without header")?;
    let mut values = resp.op_responses().into_iter().map(|op| match op {
        etcd_client::TxnOpResponse::Get(get) => {
            (get.kvs().first()).map(|kv| String::from_utf8_lossy(kv.value()).into_owned())
        }
        _ => None,
    });
    Ok(CounterReading {
        inode: values.next().flatten(),
        chunk: values.next().flatten(),
        revision,
    })
}

/// Writes both planned values in one transaction guarded on the values the plan was made from
/// (an absent key: guarded on its absence). `Ok(false)`: the guard failed, nothing written.
pub(crate) async fn advance(client: &Client, planned: &CountersAdvance) -> Result<bool, String> {
    let guard = |key: &str, from: Option<u64>| match from {
        Some(v) => Compare::value(key, CompareOp::Equal, encode(v)),
        None => Compare::create_revision(key, CompareOp::Equal, 0),
    };
    let txn = etcd_client::Txn::new()
        .when([
            guard(INODE_COUNTER_KEY, planned.inode.from),
            guard(CHUNK_COUNTER_KEY, planned.chunk.from),
        ])
        .and_then([
            TxnOp::put(INODE_COUNTER_KEY, encode(planned.inode.to), None),
            TxnOp::put(CHUNK_COUNTER_KEY, encode(planned.chunk.to), None),
        ]);
    let resp = bounded(client.kv_client().txn(txn)).await?;
    Ok(resp.succeeded())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(inode: Option<&str>, chunk: Option<&str>) -> CounterReading {
        CounterReading {
            inode: inode.map(String::from),
            chunk: chunk.map(String::from),
            revision: 7,
        }
    }

    #[test]
    fn the_advance_adds_the_margin_to_each_value_or_to_curves_initial_value() {
        let planned = plan(&reading(Some("3000"), None)).unwrap();
        assert_eq!(
            planned,
            CountersAdvance {
                inode: CounterAdvance {
                    from: Some(3000),
                    to: 3000 + (1 << 40)
                },
                chunk: CounterAdvance {
                    from: None,
                    to: 1 << 40
                },
            }
        );
        assert_eq!(
            progress(&reading(Some("3000"), None), &planned),
            AdvanceProgress::NotYet
        );
        let written = reading(Some(&encode(3000 + (1 << 40))), Some(&encode(1 << 40)));
        assert_eq!(progress(&written, &planned), AdvanceProgress::Done);
        assert_eq!(
            progress(&reading(Some("4000"), None), &planned),
            AdvanceProgress::Moved
        );
    }

    #[test]
    fn a_counter_not_in_curves_encoding_or_too_close_to_the_top_is_refused() {
        assert_eq!(
            plan(&reading(Some(" 12"), None)).unwrap_err(),
            "etcd key 04 holds \" 12\", not Curve's decimal id counter"
        );
        let near_top = encode(u64::MAX - 5);
        assert!(
            plan(&reading(None, Some(&near_top)))
                .unwrap_err()
                .contains("overflow")
        );
        assert!(
            decode("05", "18446744073709551616")
                .unwrap_err()
                .contains("beyond")
        );
    }
}
