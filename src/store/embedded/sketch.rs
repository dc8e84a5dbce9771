//! A HyperLogLog of one link's unique visitors of one day past the first `EXACT_VISITORS`
//! (those are kept one row each in `visitors`): the embedded store's `PFADD` and `PFCOUNT`, as
//! the Redis store counts them.
//!
//! Why: kept exactly, every new visitor was one more row inserted at a random place of the
//! `visitors` tree, and every group of clicks copied a page per visitor (redb copies on write).
//! With a person per request that was most of the writer's time. A day's sketch is one 16 KiB
//! value read and written once per group of clicks, whatever the number of visitors.
//!
//! 2^14 registers of one byte each, stored as they are, standard error 0.81 %. Visitors are
//! hashed with XXH3-64 (a specified hash: a sketch written by one build reads the same in the
//! next). The count is Ertl's improved estimator ("New cardinality estimation algorithms for
//! HyperLogLog sketches", 2017; Redis uses it too), which needs neither bias tables nor a switch
//! to linear counting. Written here rather than taken from a crate because the stored bytes are a
//! format kept for as long as the data: a crate's serialized form may change with its version.

use xxhash_rust::xxh3::xxh3_64;

/// Index bits of the hash.
const P: u32 = 14;
/// Registers.
const M: usize = 1 << P;
/// Hash bits left for the rank; registers hold 0 ..= Q + 1.
const Q: u32 = 64 - P;
/// α∞ = 1 / (2 ln 2).
const ALPHA_INF: f64 = 0.721_347_520_444_481_7;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Sketch(Vec<u8>);

impl Sketch {
    pub(super) fn new() -> Self {
        Self(vec![0; M])
    }

    /// A stored sketch, or `None` when the bytes are not one.
    pub(super) fn from_bytes(bytes: &[u8]) -> Option<Self> {
        // The largest register, without stopping early: this loop vectorizes (read per group).
        let valid = bytes.len() == M && u32::from(bytes.iter().fold(0, |m, &r| m.max(r))) <= Q + 1;
        valid.then(|| Self(bytes.to_vec()))
    }

    pub(super) fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Counts `visitor`; true when the sketch changed.
    pub(super) fn add(&mut self, visitor: &str) -> bool {
        let hash = xxh3_64(visitor.as_bytes());
        let register = (hash & (M as u64 - 1)) as usize;
        // The rank is one more than the trailing zeros of the other Q bits, Q + 1 when all are 0.
        let rank = ((hash >> P) | (1 << Q)).trailing_zeros() as u8 + 1;
        if rank > self.0[register] {
            self.0[register] = rank;
            true
        } else {
            false
        }
    }

    /// The estimated number of distinct visitors added.
    pub(super) fn count(&self) -> u64 {
        let mut histogram = [0u32; Q as usize + 2];
        for &r in &self.0 {
            histogram[usize::from(r)] += 1;
        }
        let m = M as f64;
        let mut z = m * tau((m - f64::from(histogram[Q as usize + 1])) / m);
        for k in (1..=Q as usize).rev() {
            z = (z + f64::from(histogram[k])) * 0.5;
        }
        z += m * sigma(f64::from(histogram[0]) / m);
        // Every register at Q + 1 (about 2^64 visitors, or bytes made up) leaves z at 0: the
        // estimate is then as large as a count can be, never a division's infinity.
        let estimate = ALPHA_INF * m * m / z;
        if estimate.is_finite() {
            estimate.round() as u64
        } else {
            u64::MAX
        }
    }
}

/// σ(x) = x + Σ_{k≥1} x^(2^k) 2^(k−1), for the registers still 0.
fn sigma(mut x: f64) -> f64 {
    if x == 1.0 {
        return f64::INFINITY;
    }
    let (mut y, mut z) = (1.0, x);
    loop {
        x *= x;
        let before = z;
        z += x * y;
        y += y;
        if z == before {
            return z;
        }
    }
}

/// τ(x) = (1 − x − Σ_{k≥1} (1 − x^(2^−k))² 2^−k) / 3, for the registers at Q + 1.
fn tau(mut x: f64) -> f64 {
    if x == 0.0 || x == 1.0 {
        return 0.0;
    }
    let (mut y, mut z) = (1.0, 1.0 - x);
    loop {
        x = x.sqrt();
        let before = z;
        y *= 0.5;
        z -= (1.0 - x).powi(2) * y;
        if z == before {
            return z / 3.0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sketch_of(visitors: impl Iterator<Item = String>) -> Sketch {
        let mut s = Sketch::new();
        for v in visitors {
            s.add(&v);
        }
        s
    }

    #[test]
    fn an_empty_sketch_counts_nobody_and_one_visitor_counts_one() {
        assert_eq!(Sketch::new().count(), 0);
        assert_eq!(sketch_of(["a".to_owned()].into_iter()).count(), 1);
    }

    #[test]
    fn counts_stay_within_two_percent_from_ten_to_a_million() {
        // Visitor hashes as the classifier makes them (24 hex digits), and plain numbers.
        for n in [10u64, 1_000, 10_000, 100_000, 1_000_000] {
            for name in [|i: u64| format!("{i:024x}"), |i: u64| format!("visitor-{i}")] {
                let count = sketch_of((0..n).map(name)).count();
                let error = (count as f64 - n as f64).abs() / n as f64;
                assert!(error < 0.02, "{count} for {n}: {:.2} % off", error * 100.0);
            }
        }
    }

    #[test]
    fn a_sketch_with_every_register_full_counts_the_most_there_is() {
        let full = Sketch::from_bytes(&[Q as u8 + 1; M]).unwrap();
        assert_eq!(full.count(), u64::MAX);
    }

    #[test]
    fn a_visitor_added_again_changes_nothing() {
        let mut s = sketch_of((0..5_000).map(|i| format!("v{i}")));
        let before = s.clone();
        for i in 0..5_000 {
            assert!(!s.add(&format!("v{i}")));
        }
        assert_eq!(s, before);
    }

    #[test]
    fn stored_bytes_read_back_the_same_and_other_bytes_are_refused() {
        let s = sketch_of((0..3_000).map(|i| i.to_string()));
        assert_eq!(Sketch::from_bytes(s.as_bytes()), Some(s.clone()));
        assert_eq!(Sketch::from_bytes(&s.as_bytes()[1..]), None);
        let mut bad = s.as_bytes().to_vec();
        bad[7] = 52;
        assert_eq!(Sketch::from_bytes(&bad), None);
    }

    #[test]
    fn the_hash_is_the_specified_xxh3() {
        // A stored sketch stays readable only while the hash stays the same function.
        assert_eq!(xxh3_64(b""), 0x2d06_8005_38d3_94c2);
    }
}
