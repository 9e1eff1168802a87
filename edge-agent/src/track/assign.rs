//! Optimal one-to-one assignment between tracks and detections (Kuhn–Munkres with potentials).
//!
//! Greedy matching swaps ids when two boxes overlap the same prediction, which is the common case in
//! dense motorbike traffic; the optimal assignment does not. Written here rather than taken from a
//! crate because it is ~60 lines and must reuse its buffers across frames (no allocation once warm).

/// Reusable solver. Pairs are scored by a gain; only pairs with a positive gain may be matched and
/// the matching maximises the total gain (a pair not worth matching leaves both sides unmatched).
#[derive(Debug, Default)]
pub(crate) struct Assigner {
    cost: Vec<f64>,
    u: Vec<f64>,
    v: Vec<f64>,
    row_of_col: Vec<usize>,
    way: Vec<usize>,
    min_v: Vec<f64>,
    used: Vec<bool>,
}

impl Assigner {
    /// Solves a `rows × cols` problem whose gains are given row-major in `gain`; appends the matched
    /// `(row, col)` pairs to `out` in row order.
    pub(crate) fn solve(
        &mut self,
        rows: usize,
        cols: usize,
        gain: &[f32],
        out: &mut Vec<(usize, usize)>,
    ) {
        debug_assert_eq!(gain.len(), rows * cols);
        if rows == 0 || cols == 0 || !gain.iter().any(|&g| g > 0.0) {
            return;
        }
        // The algorithm below needs n ≤ m; solve the transpose when there are more rows.
        let transpose = rows > cols;
        let (n, m) = if transpose {
            (cols, rows)
        } else {
            (rows, cols)
        };
        // Every row gets a column; a pair without gain costs 0, the same as leaving both unmatched,
        // so minimising the cost maximises the gain of the pairs kept (there are enough columns to
        // give the rows left over a zero-cost one).
        self.cost.clear();
        self.cost.resize(n * m, 0.0);
        for r in 0..rows {
            for c in 0..cols {
                let g = gain[r * cols + c];
                if g > 0.0 {
                    let (i, j) = if transpose { (c, r) } else { (r, c) };
                    self.cost[i * m + j] = -f64::from(g);
                }
            }
        }
        self.run(n, m);
        let start = out.len();
        for j in 1..=m {
            let i = self.row_of_col[j];
            if i == 0 {
                continue;
            }
            let (r, c) = if transpose {
                (j - 1, i - 1)
            } else {
                (i - 1, j - 1)
            };
            if gain[r * cols + c] > 0.0 {
                out.push((r, c));
            }
        }
        out[start..].sort_unstable();
    }

    /// Shortest augmenting paths with row/column potentials, 1-based with a virtual column 0.
    fn run(&mut self, n: usize, m: usize) {
        reset(&mut self.u, n + 1, 0.0);
        reset(&mut self.v, m + 1, 0.0);
        reset(&mut self.row_of_col, m + 1, 0);
        reset(&mut self.way, m + 1, 0);
        for i in 1..=n {
            self.row_of_col[0] = i;
            let mut j0 = 0;
            reset(&mut self.min_v, m + 1, f64::INFINITY);
            reset(&mut self.used, m + 1, false);
            loop {
                self.used[j0] = true;
                let i0 = self.row_of_col[j0];
                let mut delta = f64::INFINITY;
                let mut j1 = 0;
                let row = &self.cost[(i0 - 1) * m..i0 * m];
                for j in 1..=m {
                    if self.used[j] {
                        continue;
                    }
                    let cur = row[j - 1] - self.u[i0] - self.v[j];
                    if cur < self.min_v[j] {
                        self.min_v[j] = cur;
                        self.way[j] = j0;
                    }
                    if self.min_v[j] < delta {
                        delta = self.min_v[j];
                        j1 = j;
                    }
                }
                for j in 0..=m {
                    if self.used[j] {
                        self.u[self.row_of_col[j]] += delta;
                        self.v[j] -= delta;
                    } else {
                        self.min_v[j] -= delta;
                    }
                }
                j0 = j1;
                if self.row_of_col[j0] == 0 {
                    break;
                }
            }
            while j0 != 0 {
                let j1 = self.way[j0];
                self.row_of_col[j0] = self.row_of_col[j1];
                j0 = j1;
            }
        }
    }
}

fn reset<T: Copy>(v: &mut Vec<T>, len: usize, value: T) {
    v.clear();
    v.resize(len, value);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn solve(rows: usize, cols: usize, gain: &[f32]) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        Assigner::default().solve(rows, cols, gain, &mut out);
        out
    }

    /// Exhaustive best total gain over all partial matchings, for small problems.
    fn brute(rows: usize, cols: usize, gain: &[f32]) -> f32 {
        fn go(r: usize, rows: usize, cols: usize, gain: &[f32], used: &mut Vec<bool>) -> f32 {
            if r == rows {
                return 0.0;
            }
            let mut best = go(r + 1, rows, cols, gain, used);
            for c in 0..cols {
                let g = gain[r * cols + c];
                if !used[c] && g > 0.0 {
                    used[c] = true;
                    best = best.max(g + go(r + 1, rows, cols, gain, used));
                    used[c] = false;
                }
            }
            best
        }
        go(0, rows, cols, gain, &mut vec![false; cols])
    }

    #[test]
    fn beats_greedy_on_a_shared_best_column() {
        // Greedy would give row 0 column 0 (0.9) and leave row 1 with 0.1; optimal is 0.8 + 0.7.
        let out = solve(2, 2, &[0.9, 0.8, 0.7, 0.1]);
        assert_eq!(out, vec![(0, 1), (1, 0)]);
    }

    #[test]
    fn pairs_without_gain_stay_unmatched() {
        let out = solve(2, 3, &[0.0, 0.5, 0.0, 0.0, 0.0, -1.0]);
        assert_eq!(out, vec![(0, 1)]);
        assert!(solve(3, 0, &[]).is_empty());
        assert!(solve(2, 2, &[0.0; 4]).is_empty());
    }

    #[test]
    fn matches_exhaustive_search_on_random_problems() {
        // Deterministic LCG so the test is reproducible without a rand dependency.
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = || {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((seed >> 33) as f32) / (1u64 << 31) as f32
        };
        let mut solver = Assigner::default();
        for case in 0..300 {
            let rows = 1 + case % 5;
            let cols = 1 + (case / 5) % 6;
            let gain: Vec<f32> = (0..rows * cols)
                .map(|_| {
                    let x = next();
                    if x < 0.4 { 0.0 } else { x - 0.4 }
                })
                .collect();
            let mut out = Vec::new();
            solver.solve(rows, cols, &gain, &mut out);
            let total: f32 = out.iter().map(|&(r, c)| gain[r * cols + c]).sum();
            let best = brute(rows, cols, &gain);
            assert!(
                (total - best).abs() < 1e-4,
                "case {case}: {rows}x{cols} got {total}, best {best}, {out:?}"
            );
            let mut rs: Vec<_> = out.iter().map(|p| p.0).collect();
            let mut cs: Vec<_> = out.iter().map(|p| p.1).collect();
            rs.dedup();
            cs.sort_unstable();
            cs.dedup();
            assert_eq!(rs.len(), out.len(), "a row matched twice");
            assert_eq!(cs.len(), out.len(), "a column matched twice");
        }
    }
}
