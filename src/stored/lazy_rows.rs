//! [`StoredRows`]: a ledger's events as whole rows read from the records on demand, selected
//! and counted from the columns — what `ledger.events()` hands out, so that a table of a
//! million events costs its columns and one `u32` per row, not a million parsed events.
//!
//! Records are immutable once written, so a row read later is the row the table was made
//! from; a record that has since been removed or damaged is reported when it is read
//! (`Error::Integrity`), never skipped.

use std::sync::Arc;

use parking_lot::Mutex;

use crate::error::{Error, Result};
use crate::event::{EventKind, Tag};
use crate::ledger::Store;
use crate::stored::columns::{EventColumns, NULL};
use crate::stored::rows::{parse_record_explained, Catalogues, Filter, Row};

/// Rows of a store as of its columns: select by filter, read by column index.
#[derive(Debug)]
pub struct StoredRows {
    store: Arc<Mutex<Store>>,
    cols: Arc<EventColumns>,
    catalogues: Catalogues,
}

impl StoredRows {
    /// The rows of `store` as of `cols` (the store's columns at some head).
    pub fn new(store: Arc<Mutex<Store>>, cols: Arc<EventColumns>) -> Result<Self> {
        let catalogues = Catalogues::load(&store.lock())?;
        Ok(StoredRows {
            store,
            cols,
            catalogues,
        })
    }

    pub fn columns(&self) -> &EventColumns {
        &self.cols
    }

    /// The column indices of the rows that `filter` keeps, among `among` (every row when
    /// `None`), in order.
    pub fn select(&self, filter: &Filter, among: Option<&[u32]>) -> Vec<u32> {
        let c = &*self.cols;
        let session = match filter.session_id.as_deref() {
            None => None,
            Some(s) => match c.session_id.code(s) {
                Some(code) => Some(code),
                // No event has that session: nothing is kept.
                None => return Vec::new(),
            },
        };
        let keeps = |i: usize| {
            filter.kind.is_none_or(|k| c.kind[i] == k)
                && session.is_none_or(|code| c.session_id.codes[i] == code && code != NULL)
                && filter.tag.is_none_or(|t| c.tag[i] == t)
        };
        match among {
            Some(idx) => idx.iter().copied().filter(|&i| keeps(i as usize)).collect(),
            None => (0..c.len)
                .filter(|&i| keeps(i))
                .map(|i| u32::try_from(i).expect("fewer than 2^32 events"))
                .collect(),
        }
    }

    /// Counts of rows per `(kind, tag, session_tag)` among `idx` (those that occur).
    pub fn counts(&self, idx: &[u32]) -> Vec<((EventKind, Tag, Tag), usize)> {
        let c = &*self.cols;
        let bit = |t: Tag| usize::from(t == Tag::Stateful);
        let mut n = [[[0usize; 2]; 2]; 5];
        for &i in idx {
            let i = i as usize;
            n[kind_index(c.kind[i])][bit(c.tag[i])][bit(c.session_tag[i])] += 1;
        }
        let tags = [Tag::Stateless, Tag::Stateful];
        let mut out = Vec::new();
        for (k, kind) in EventKind::ALL.iter().enumerate() {
            for (t, tag) in tags.iter().enumerate() {
                for (s, session) in tags.iter().enumerate() {
                    if n[k][t][s] > 0 {
                        out.push(((*kind, *tag, *session), n[k][t][s]));
                    }
                }
            }
        }
        out
    }

    /// The rows at column indices `idx`, in that order: records read in one range scan
    /// where they are dense, one by one where they are sparse.
    pub fn read(&self, idx: &[u32]) -> Result<Vec<Row>> {
        if idx.is_empty() {
            return Ok(Vec::new());
        }
        let c = &*self.cols;
        let mut order: Vec<(u64, usize)> = idx
            .iter()
            .enumerate()
            .map(|(pos, &i)| (c.seq[i as usize], pos))
            .collect();
        order.sort_unstable();
        let mut out: Vec<Option<Row>> = vec![None; idx.len()];
        let store = self.store.lock();
        let (lo, hi) = (order[0].0, order[order.len() - 1].0);
        let row = |seq: u64, text: &str, i: usize| -> Result<Row> {
            Ok(Row {
                rec: Arc::new(parse_record_explained(seq, text, &self.catalogues)?),
                session_tag: c.session_tag[i],
            })
        };
        if hi - lo < 4 * order.len() as u64 {
            let mut next = 0;
            store.for_each_record_between(lo - 1, hi, u64::MAX, |seq, text| {
                while next < order.len() && order[next].0 == seq {
                    let pos = order[next].1;
                    out[pos] = Some(row(seq, text, idx[pos] as usize)?);
                    next += 1;
                }
                Ok(())
            })?;
        } else {
            for &(seq, pos) in &order {
                if let Some(text) = store.expanded_record_at(seq)? {
                    out[pos] = Some(row(seq, &text, idx[pos] as usize)?);
                }
            }
        }
        drop(store);
        idx.iter()
            .zip(out)
            .map(|(&i, r)| {
                r.ok_or_else(|| {
                    let seq = c.seq[i as usize];
                    Error::Integrity(format!(
                        "the event at seq {seq} is missing from the ledger (run verify())"
                    ))
                })
            })
            .collect()
    }
}

/// The position of `k` in [`EventKind::ALL`].
fn kind_index(k: EventKind) -> usize {
    EventKind::ALL
        .iter()
        .position(|&x| x == k)
        .expect("every kind is in ALL")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::Ruleset;
    use crate::event::Event;
    use crate::ledger::Durability;
    use crate::meter::Recorder;
    use crate::stored::columns::load_stored;
    use crate::stored::rows;

    #[test]
    fn rows_read_on_demand_equal_the_loaded_rows() {
        let store = Arc::new(Mutex::new(Store::open(None, Durability::Sync).unwrap()));
        let r = Recorder::new(
            Arc::clone(&store),
            Ruleset::builtin_default(),
            Durability::Sync,
            16,
        )
        .unwrap();
        for i in 0..50u64 {
            let mut e = Event::new(if i % 3 == 0 {
                EventKind::ToolCall
            } else {
                EventKind::ModelCall
            });
            e.session_id = Some(format!("s{}", i % 4).into());
            if e.kind == EventKind::ModelCall {
                e.provider = Some("openai".into());
                e.model = Some("gpt-5".into());
                e.api = Some("responses".into());
                if i % 8 == 1 {
                    e.request = serde_json::json!({"previous_response_id": "r"})
                        .as_object()
                        .cloned();
                }
            } else {
                e.tool = Some("search".into());
            }
            r.write_now(&r.wrap(e.finish().unwrap())).unwrap();
        }
        let all = rows::load(&store.lock()).unwrap();
        let cols =
            Arc::new(load_stored(&store.lock(), crate::stored::columns::Projection::ALL).unwrap());
        let lazy = StoredRows::new(Arc::clone(&store), cols).unwrap();
        let every = lazy.select(&Filter::default(), None);
        assert_eq!(every.len(), 50);
        let key = |r: &Row| {
            (
                r.rec.seq(),
                r.rec.event.id.clone(),
                r.session_tag,
                r.rec.classification().evidence.len(),
            )
        };
        let read = lazy.read(&every).unwrap();
        assert_eq!(
            read.iter().map(key).collect::<Vec<_>>(),
            all.iter().map(key).collect::<Vec<_>>()
        );
        // Evidence comes explained, as from rows::load.
        assert_eq!(
            read.iter()
                .map(|r| r.rec.classification().clone())
                .collect::<Vec<_>>(),
            all.iter()
                .map(|r| r.rec.classification().clone())
                .collect::<Vec<_>>()
        );
        for filter in [
            Filter {
                kind: Some(EventKind::ToolCall),
                ..Filter::default()
            },
            Filter {
                session_id: Some("s1".into()),
                tag: Some(Tag::Stateful),
                ..Filter::default()
            },
            Filter {
                session_id: Some("nope".into()),
                ..Filter::default()
            },
            Filter {
                tag: Some(Tag::Stateless),
                ..Filter::default()
            },
        ] {
            let want: Vec<_> = all.iter().filter(|r| filter.keeps(r)).map(key).collect();
            let idx = lazy.select(&filter, None);
            assert_eq!(
                lazy.read(&idx).unwrap().iter().map(key).collect::<Vec<_>>(),
                want
            );
            // Filtering a selection again keeps the same rows.
            assert_eq!(lazy.select(&filter, Some(&every)), idx);
        }
        // Sparse, reversed and repeated indices.
        let picks = [49u32, 0, 25, 25, 3];
        let got: Vec<_> = lazy.read(&picks).unwrap().iter().map(key).collect();
        let want: Vec<_> = picks.iter().map(|&i| key(&all[i as usize])).collect();
        assert_eq!(got, want);
        let counts = lazy.counts(&every);
        assert_eq!(counts.iter().map(|c| c.1).sum::<usize>(), 50);
    }
}
