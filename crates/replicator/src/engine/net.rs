//! The net effect of a batch of row changes on one table with a primary key.
//!
//! A batch (one or more whole source transactions) is written to the target as its net effect:
//! per key, the row it holds at the end, or its absence. The target's key is checked on every
//! statement, so writing only final states is what lets one statement carry many rows.
//!
//! Within a source transaction several rows can hold one key for a while: under a
//! `DEFERRABLE` key, `UPDATE t SET id = id + 1` moves row 1 onto key 2 before row 2 moves on to
//! key 3. So a key does not hold *a* row during the batch but a small pile of them:
//!
//! ```text
//!  key 2:  [target's row B] ── +A (row 1 moved here) ──▶ [B, A] ── −(row 2 leaves) ──▶ [A]
//! ```
//!
//! Which row a removal takes is decided by [`KeyMode`]: with a key that is checked at once
//! there is only ever one; otherwise the one whose values match the old row's identity columns
//! (the whole row under `REPLICA IDENTITY FULL`, or a unique index's columns, which PostgreSQL
//! requires to be checked at once: a `DEFERRABLE` key cannot be the replica identity). A row that arrives without some of its
//! columns (an unchanged TOAST value is not sent) takes them from where it came from: its
//! earlier image in the batch, the old row the source sent, or — for a row that moved from
//! another key — the target's row at that key, which the caller reads before writing anything
//! ([`TableNet::fill_requests`], [`TableNet::fill`]).
//!
//! A large source transaction reaches the applier in parts. Between parts, keys that hold at
//! most one row are written ([`TableNet::take_settled`]); a key that still holds several
//! stays here until a later part settles it, since the target (checked on every statement,
//! and CockroachDB has no `DEFERRABLE`) cannot hold them. Such keys are few: a shift of a
//! million rows has one at a time.

use std::collections::{HashMap, HashSet};

/// Column values of one row, as text (`None` is SQL NULL).
pub type Values = Vec<Option<String>>;

/// The primary-key values of a row, in key order.
pub type Key = Vec<Option<String>>;

/// How a removal at a key finds the row it removes when the key holds several.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyMode {
    /// The source checks the key on every row (not `DEFERRABLE`): a key holds at most one
    /// row at any moment, so a removal takes the only one, and a new row replaces whatever
    /// the key held.
    Exclusive,
    /// The key may be shared within a transaction (`DEFERRABLE`): a removal takes the row
    /// whose values at these columns (the source's replica identity, unique at every moment,
    /// or the whole row) equal the old row's, else the target's own row. The caller says
    /// which keys the target holds ([`TableNet::new`]).
    ByValue(Vec<usize>),
}

/// A row image: values and the columns (indices) they cover.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// One value per target column; uncovered columns are `None` and not meaningful.
    pub vals: Values,
    /// Indices of the columns the image carries.
    pub present: Vec<usize>,
}

/// One change of one row, as the source describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowChange {
    /// A new row.
    Insert(Image),
    /// A changed row: `old` is the old row (or only its key) when the source sent one, which
    /// it does when the key changed or under `REPLICA IDENTITY FULL`.
    Update {
        /// The old row or its key columns.
        old: Option<Values>,
        /// The new row.
        new: Image,
    },
    /// A removed row (whole, or only its key).
    Delete(Values),
}

/// A row the batch leaves at a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpsertRow {
    /// Its values.
    pub vals: Values,
    /// Which columns are known; an unknown column keeps the target's value at this key.
    pub covered: Vec<bool>,
}

impl UpsertRow {
    /// Indices of the covered columns.
    pub fn present(&self) -> Vec<usize> {
        self.covered.iter().enumerate().filter(|(_, c)| **c).map(|(i, _)| i).collect()
    }
}

/// What the batch leaves on one table.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct NetEffect {
    /// Keys that hold no row at the end.
    pub deletes: Vec<Key>,
    /// Keys that hold a new or changed row, in order of first appearance.
    pub upserts: Vec<UpsertRow>,
    /// Keys left holding more than one row at a commit (the source's key is not the
    /// target's): the last row is kept.
    pub collisions: usize,
    /// Rows that moved from a key the target did not hold, so the columns the source left
    /// out are unknown (written as the target's defaults).
    pub unfilled: usize,
}

/// A row added during the batch.
#[derive(Debug, Clone)]
struct Added {
    vals: Values,
    covered: Vec<bool>,
    /// Where the uncovered columns come from: the target's row at this key.
    origin: Option<Key>,
}

/// The target's own row at a key, as far as the batch knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Base {
    /// Not touched by the batch (it may or may not exist).
    Untouched,
    /// Removed by the batch, or known not to exist.
    Gone,
}

#[derive(Debug)]
struct KeyState {
    base: Base,
    added: Vec<Added>,
}

/// What a removal took.
enum Removed {
    /// The target's row at that key.
    Base,
    /// A row added earlier in the batch.
    Added(Added),
    /// Nothing was there (the target is missing a row the source had).
    Nothing,
}

/// The net effect of a batch on one table, built change by change in stream order.
#[derive(Debug)]
pub struct TableNet {
    mode: KeyMode,
    key_cols: Vec<usize>,
    width: usize,
    /// Old rows are whole (`REPLICA IDENTITY FULL`): they complete the new rows.
    full_old: bool,
    /// [`KeyMode::ByValue`]: the touched keys the target holds before the part of the batch
    /// being applied (consulted when a key is first seen).
    existing: HashSet<Key>,
    index: HashMap<Key, usize>,
    keys: Vec<(Key, KeyState)>,
    unfilled: usize,
}

impl TableNet {
    /// A net effect for a table with `width` columns keyed by the columns at `key_cols`.
    /// `existing` matters to [`KeyMode::ByValue`]: which keys the target holds now, of those
    /// the batch touches ([`TableNet::keys_of`]).
    pub fn new(
        mode: KeyMode,
        key_cols: Vec<usize>,
        width: usize,
        full_old: bool,
        existing: HashSet<Key>,
    ) -> Self {
        Self {
            mode,
            key_cols,
            width,
            full_old,
            existing,
            index: HashMap::new(),
            keys: Vec::new(),
            unfilled: 0,
        }
    }

    /// Adds keys the target holds, looked up before the next part of a transaction (keys
    /// already held here are not affected).
    pub fn add_existing(&mut self, keys: impl IntoIterator<Item = Key>) {
        self.existing.extend(keys);
    }

    /// Whether no key is held here.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The keys whose target rows complete rows that moved away from them without some
    /// columns: read them ([`TableNet::fill`]) before writing anything of the batch.
    pub fn fill_requests(&self) -> Vec<Key> {
        let mut out: Vec<Key> = Vec::new();
        for (key, state) in &self.keys {
            for a in &state.added {
                if let Some(o) = &a.origin
                    && o != key
                    && !out.contains(o)
                {
                    out.push(o.clone());
                }
            }
        }
        out
    }

    /// Completes moved rows from the target rows read for [`TableNet::fill_requests`]
    /// (`found`: key → every column as text).
    pub fn fill(&mut self, found: &HashMap<Key, Values>) {
        for (key, state) in &mut self.keys {
            for a in &mut state.added {
                let Some(o) = a.origin.take_if(|o| o != key) else { continue };
                match found.get(&o) {
                    Some(old) => {
                        for (i, c) in a.covered.iter_mut().enumerate() {
                            if !*c {
                                a.vals[i] = old.get(i).cloned().flatten();
                                *c = true;
                            }
                        }
                    }
                    None => self.unfilled += 1,
                }
            }
        }
    }

    /// The keys a change touches (its old key and its new key).
    pub fn keys_of(key_cols: &[usize], change: &RowChange) -> Vec<Key> {
        let key = |v: &Values| -> Key { key_cols.iter().map(|&i| v[i].clone()).collect() };
        match change {
            RowChange::Insert(new) => vec![key(&new.vals)],
            RowChange::Update { old, new } => {
                let mut out = vec![key(&new.vals)];
                if let Some(old) = old {
                    let k = key(old);
                    if k != out[0] {
                        out.push(k);
                    }
                }
                out
            }
            RowChange::Delete(old) => vec![key(old)],
        }
    }

    fn key(&self, vals: &Values) -> Key {
        self.key_cols.iter().map(|&i| vals[i].clone()).collect()
    }

    fn state(&mut self, key: &Key) -> &mut KeyState {
        let i = match self.index.get(key) {
            Some(&i) => i,
            None => {
                let base = if self.mode != KeyMode::Exclusive && !self.existing.contains(key) {
                    Base::Gone
                } else {
                    Base::Untouched
                };
                self.index.insert(key.clone(), self.keys.len());
                self.keys.push((key.clone(), KeyState { base, added: Vec::new() }));
                self.keys.len() - 1
            }
        };
        &mut self.keys[i].1
    }

    /// Applies one change, in stream order.
    pub fn apply(&mut self, change: RowChange) {
        match change {
            RowChange::Insert(new) => {
                let covered = self.mask(&new.present);
                let key = self.key(&new.vals);
                self.add(&key, Added { vals: new.vals, covered, origin: None });
            }
            RowChange::Update { old, new } => {
                let new_key = self.key(&new.vals);
                let old_key = old.as_ref().map_or_else(|| new_key.clone(), |o| self.key(o));
                // Without an old row the identity columns did not change: the new row's are
                // the old row's.
                let removed = self.remove(&old_key, Some(old.as_ref().unwrap_or(&new.vals)));
                let whole_old = old.as_ref().filter(|_| self.full_old);
                let mut vals = new.vals;
                let mut covered = self.mask(&new.present);
                let mut origin = None;
                if let Some(old) = whole_old {
                    // A whole old row: what the new image left out is unchanged from it.
                    for i in 0..self.width {
                        if !covered[i] {
                            vals[i] = old[i].clone();
                            covered[i] = true;
                        }
                    }
                } else {
                    match removed {
                        Removed::Added(earlier) => {
                            for i in 0..self.width {
                                if !covered[i] && earlier.covered[i] {
                                    vals[i] = earlier.vals[i].clone();
                                    covered[i] = true;
                                }
                            }
                            origin = earlier.origin;
                        }
                        Removed::Base | Removed::Nothing => origin = Some(old_key),
                    }
                }
                if covered.iter().all(|c| *c) {
                    origin = None;
                }
                self.add(&new_key, Added { vals, covered, origin });
            }
            RowChange::Delete(old) => {
                let key = self.key(&old);
                self.remove(&key, Some(&old));
            }
        }
    }

    fn mask(&self, present: &[usize]) -> Vec<bool> {
        let mut mask = vec![false; self.width];
        for &i in present {
            if let Some(m) = mask.get_mut(i) {
                *m = true;
            }
        }
        mask
    }

    fn add(&mut self, key: &Key, row: Added) {
        let exclusive = self.mode == KeyMode::Exclusive;
        let state = self.state(key);
        if exclusive {
            // The key was free when this row took it.
            state.base = Base::Gone;
            state.added.clear();
        }
        state.added.push(row);
    }

    fn remove(&mut self, key: &Key, old: Option<&Values>) -> Removed {
        let identity = match &self.mode {
            KeyMode::ByValue(cols) => Some(cols.clone()),
            KeyMode::Exclusive => None,
        };
        let state = self.state(key);
        if let (Some(cols), Some(old)) = (identity.as_ref(), old) {
            let same = |a: &Added| {
                cols.iter().all(|&i| {
                    !a.covered.get(i).copied().unwrap_or(false) || a.vals.get(i) == old.get(i)
                })
            };
            if let Some(pos) = state.added.iter().position(same) {
                return Removed::Added(state.added.remove(pos));
            }
        }
        // No row added in the batch has the old values: the target's own row is the one
        // (with a checked key, it is the only candidate once the batch's row is gone).
        if (identity.is_some() || state.added.is_empty()) && state.base == Base::Untouched {
            state.base = Base::Gone;
            return Removed::Base;
        }
        match state.added.pop() {
            Some(a) => Removed::Added(a),
            None => Removed::Nothing,
        }
    }

    /// The final state of every key the batch touched (the batch ends at a commit).
    pub fn finish(mut self) -> NetEffect {
        self.take_all()
    }

    /// [`TableNet::finish`] in place: every key is taken.
    pub fn take_all(&mut self) -> NetEffect {
        let out = self.take(|_| true);
        self.existing.clear();
        out
    }

    /// The state of the keys that hold at most one row, removed from here; keys shared by
    /// several rows stay for the next part of the transaction.
    pub fn take_settled(&mut self) -> NetEffect {
        let out = self.take(|held| held <= 1);
        self.existing.clear();
        out
    }

    /// How many rows a key holds: those added, and the target's own while untouched (known
    /// to exist under [`KeyMode::ByValue`]; under [`KeyMode::Exclusive`] adding a row clears
    /// the key).
    fn held(mode: &KeyMode, state: &KeyState) -> usize {
        let base = *mode != KeyMode::Exclusive && state.base == Base::Untouched;
        state.added.len() + usize::from(base)
    }

    fn take(&mut self, settled: impl Fn(usize) -> bool) -> NetEffect {
        let mut out =
            NetEffect { unfilled: std::mem::take(&mut self.unfilled), ..NetEffect::default() };
        let mut kept = Vec::new();
        for (key, mut state) in std::mem::take(&mut self.keys) {
            let held = Self::held(&self.mode, &state);
            if !settled(held) {
                kept.push((key, state));
                continue;
            }
            if held > 1 {
                out.collisions += 1;
            }
            match state.added.pop() {
                Some(row) => out.upserts.push(UpsertRow { vals: row.vals, covered: row.covered }),
                None if state.base == Base::Gone => out.deletes.push(key),
                None => {}
            }
        }
        self.index = kept.iter().enumerate().map(|(i, (k, _))| (k.clone(), i)).collect();
        self.keys = kept;
        out
    }
}

/// Rows grouped by the columns they cover, in order of first appearance: one statement each.
pub fn group_by_columns(rows: Vec<UpsertRow>) -> Vec<(Vec<usize>, Vec<Values>)> {
    let mut groups: Vec<(Vec<usize>, Vec<Values>)> = Vec::new();
    for row in rows {
        let present = row.present();
        match groups.iter_mut().find(|(p, _)| *p == present) {
            Some((_, vals)) => vals.push(row.vals),
            None => groups.push((present, vec![row.vals])),
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Option<String> {
        Some(s.to_owned())
    }

    fn img(vals: &[&str]) -> Image {
        Image { vals: vals.iter().map(|s| v(s)).collect(), present: (0..vals.len()).collect() }
    }

    fn row(vals: &[&str]) -> Values {
        vals.iter().map(|s| v(s)).collect()
    }

    /// Runs `changes` on a table whose target holds `before` (two columns, key first) and
    /// returns what the target holds after the net effect is written.
    fn run(
        mode: KeyMode,
        full_old: bool,
        before: &[[&str; 2]],
        changes: Vec<RowChange>,
    ) -> Vec<Values> {
        let existing: HashSet<Key> = before.iter().map(|r| vec![v(r[0])]).collect();
        let mut net = TableNet::new(mode, vec![0], 2, full_old, existing);
        for c in changes {
            net.apply(c);
        }
        let effect = net.finish();
        assert_eq!(effect.collisions, 0);
        let mut table: HashMap<Key, Values> =
            before.iter().map(|r| (vec![v(r[0])], row(r))).collect();
        for k in effect.deletes {
            table.remove(&k);
        }
        for u in effect.upserts {
            let k = vec![u.vals[0].clone()];
            let mut vals = table.get(&k).cloned().unwrap_or(vec![None, None]);
            for (i, c) in u.covered.iter().enumerate() {
                if *c {
                    vals[i] = u.vals[i].clone();
                }
            }
            table.insert(k, vals);
        }
        let mut out: Vec<Values> = table.into_values().collect();
        out.sort();
        out
    }

    /// Whole old rows (`REPLICA IDENTITY FULL`), and old identity columns that are the
    /// whole row here but do not complete new images.
    fn modes() -> [(KeyMode, bool); 2] {
        [(KeyMode::ByValue(vec![0, 1]), true), (KeyMode::ByValue(vec![0, 1]), false)]
    }

    fn upd(old: &[&str], new: &[&str], _full: bool) -> RowChange {
        RowChange::Update { old: Some(row(old)), new: img(new) }
    }

    fn shift_changes(n: usize, full: bool) -> Vec<RowChange> {
        (1..=n)
            .map(|i| {
                let (a, b) = (i.to_string(), (i + 1).to_string());
                let val = format!("v{i}");
                upd(&[&a, &val], &[&b, &val], full)
            })
            .collect()
    }

    fn rows_of(pairs: &[(&str, &str)]) -> Vec<Values> {
        let mut out: Vec<Values> = pairs.iter().map(|(a, b)| vec![v(a), v(b)]).collect();
        out.sort();
        out
    }

    #[test]
    fn a_shift_through_each_others_keys_keeps_every_row() {
        let before: Vec<[String; 2]> = (1..=10).map(|i| [i.to_string(), format!("v{i}")]).collect();
        let before: Vec<[&str; 2]> =
            before.iter().map(|r| [r[0].as_str(), r[1].as_str()]).collect();
        let want: Vec<(String, String)> =
            (1..=10).map(|i| ((i + 1).to_string(), format!("v{i}"))).collect();
        let want: Vec<(&str, &str)> = want.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        for (mode, full) in modes() {
            let got = run(mode.clone(), full, &before, shift_changes(10, full));
            assert_eq!(got, rows_of(&want), "{mode:?}");
        }
    }

    #[test]
    fn a_swap_in_one_statement_and_a_rotation_in_three() {
        let before = [["1", "a"], ["2", "b"], ["3", "c"]];
        for (mode, full) in modes() {
            // UPDATE t SET id = CASE id WHEN 1 THEN 2 WHEN 2 THEN 1 END WHERE id < 3
            let swap =
                vec![upd(&["1", "a"], &["2", "a"], full), upd(&["2", "b"], &["1", "b"], full)];
            assert_eq!(
                run(mode.clone(), full, &before, swap),
                rows_of(&[("1", "b"), ("2", "a"), ("3", "c")])
            );
            // a → 2, b → 3, c → 1, one statement each.
            let rotate = vec![
                upd(&["1", "a"], &["2", "a"], full),
                upd(&["2", "b"], &["3", "b"], full),
                upd(&["3", "c"], &["1", "c"], full),
            ];
            assert_eq!(
                run(mode, full, &before, rotate),
                rows_of(&[("1", "c"), ("2", "a"), ("3", "b")])
            );
        }
    }

    #[test]
    fn whole_old_rows_tell_a_second_move_of_the_same_row_apart() {
        // SET id = 2 WHERE id = 1 (key 2 now holds a and b); SET id = 3 WHERE v = 'a'.
        let before = [["1", "a"], ["2", "b"]];
        let changes =
            vec![upd(&["1", "a"], &["2", "a"], true), upd(&["2", "a"], &["3", "a"], true)];
        assert_eq!(
            run(KeyMode::ByValue(vec![0, 1]), true, &before, changes),
            rows_of(&[("2", "b"), ("3", "a")])
        );
    }

    #[test]
    fn checked_keys_move_onto_freed_keys_and_keep_the_last_image() {
        let before = [["5", "x"], ["6", "y"]];
        // DELETE 5; UPDATE 6 → 5; INSERT 6; UPDATE 6 (no key change, partial image).
        let changes = vec![
            RowChange::Delete(vec![v("5"), None]),
            upd(&["6", "y"], &["5", "y"], false),
            RowChange::Insert(img(&["6", "new"])),
            RowChange::Update { old: None, new: img(&["6", "newer"]) },
            RowChange::Insert(img(&["7", "gone"])),
            RowChange::Delete(vec![v("7"), None]),
        ];
        assert_eq!(
            run(KeyMode::Exclusive, false, &before, changes),
            rows_of(&[("5", "y"), ("6", "newer")])
        );
    }

    #[test]
    fn an_insert_then_delete_under_a_shared_key_leaves_nothing() {
        for (mode, full) in modes() {
            let changes =
                vec![RowChange::Insert(img(&["9", "x"])), RowChange::Delete(vec![v("9"), v("x")])];
            assert_eq!(run(mode.clone(), full, &[], changes), Vec::<Values>::new(), "{mode:?}");
        }
    }

    #[test]
    fn uncovered_columns_come_from_where_the_row_was() {
        // Three columns: key, small, big (TOAST: left out of the new image when unchanged).
        let partial =
            |k: &str, s: &str| Image { vals: vec![v(k), v(s), None], present: vec![0, 1] };
        let mut net = TableNet::new(KeyMode::Exclusive, vec![0], 3, false, HashSet::new());
        // An in-place update keeps the target's big value (a partial upsert, nothing to read).
        net.apply(RowChange::Update { old: None, new: partial("1", "s1") });
        // A moved row's big value lives at its old key: the caller reads it first.
        net.apply(RowChange::Update {
            old: Some(vec![v("2"), None, None]),
            new: partial("20", "s2"),
        });
        // Moved twice: still read from the first key.
        net.apply(RowChange::Update {
            old: Some(vec![v("20"), None, None]),
            new: partial("30", "s3"),
        });
        // An insert then an update: the insert's value carries over.
        net.apply(RowChange::Insert(Image {
            vals: vec![v("4"), v("a"), v("big")],
            present: vec![0, 1, 2],
        }));
        net.apply(RowChange::Update { old: None, new: partial("4", "b") });
        assert_eq!(net.fill_requests(), vec![vec![v("2")]]);
        net.fill(&HashMap::from([(vec![v("2")], vec![v("2"), v("old"), v("big2")])]));
        let effect = net.finish();
        assert_eq!(effect.deletes, vec![vec![v("2")], vec![v("20")]]);
        let ups: Vec<(Values, Vec<usize>)> =
            effect.upserts.iter().map(|u| (u.vals.clone(), u.present())).collect();
        assert_eq!(
            ups,
            vec![
                (vec![v("1"), v("s1"), None], vec![0, 1]),
                (vec![v("30"), v("s3"), v("big2")], vec![0, 1, 2]),
                (vec![v("4"), v("b"), v("big")], vec![0, 1, 2]),
            ]
        );
    }

    #[test]
    fn a_part_of_a_transaction_writes_keys_held_by_one_row_and_keeps_the_rest() {
        // Rows 1..4 shift up by one; the transaction reaches the applier in two parts.
        let existing: HashSet<Key> = (1..=4).map(|i| vec![v(&i.to_string())]).collect();
        let mut net = TableNet::new(KeyMode::ByValue(vec![0, 1]), vec![0], 2, false, existing);
        let changes = shift_changes(4, false);
        net.apply(changes[0].clone());
        net.apply(changes[1].clone());
        // Key 1 is free (delete it), key 2 holds row 1 only now, key 3 holds its own row and
        // row 2: it waits.
        let first = net.take_settled();
        assert_eq!(first.deletes, vec![vec![v("1")]]);
        assert_eq!(
            first.upserts,
            vec![UpsertRow { vals: row(&["2", "v1"]), covered: vec![true, true] }]
        );
        assert!(!net.is_empty());
        // The next part's lookup: key 4 is on the target (key 3 is held here already).
        net.add_existing([vec![v("3")], vec![v("4")]]);
        net.apply(changes[2].clone());
        net.apply(changes[3].clone());
        let rest = net.finish();
        let mut got: Vec<Values> = rest.upserts.into_iter().map(|u| u.vals).collect();
        got.sort();
        assert_eq!(got, vec![row(&["3", "v2"]), row(&["4", "v3"]), row(&["5", "v4"])]);
        assert_eq!(rest.collisions, 0);
    }

    #[test]
    fn whole_old_rows_complete_the_new_image() {
        let mut net = TableNet::new(KeyMode::Exclusive, vec![0], 3, true, HashSet::new());
        net.apply(RowChange::Update {
            old: Some(vec![v("1"), v("s"), v("big")]),
            new: Image { vals: vec![v("2"), v("t"), None], present: vec![0, 1] },
        });
        let effect = net.finish();
        assert_eq!(effect.upserts[0].vals, vec![v("2"), v("t"), v("big")]);
        assert!(net_is_whole(&effect.upserts[0]));
        assert_eq!(effect.deletes, vec![vec![v("1")]]);
    }

    fn net_is_whole(r: &UpsertRow) -> bool {
        r.covered.iter().all(|c| *c)
    }

    #[test]
    fn rows_group_by_the_columns_they_cover() {
        let r = |vals: Values, covered: Vec<bool>| UpsertRow { vals, covered };
        let groups = group_by_columns(vec![
            r(vec![v("1"), v("a")], vec![true, true]),
            r(vec![v("2"), None], vec![true, false]),
            r(vec![v("3"), v("c")], vec![true, true]),
        ]);
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0], (vec![0, 1], vec![vec![v("1"), v("a")], vec![v("3"), v("c")]]));
        assert_eq!(groups[1], (vec![0], vec![vec![v("2"), None]]));
    }
}
