//! The kNN searches against brute force, and the NN-descent pieces on their own.

use super::check::{Check, CHECK_SAMPLE};
use super::descent::JOIN_GROUP;
use super::*;
use crate::backend::points::sq_dist_f32;
use crate::backend::CpuBackend;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Normal};

/// `n` points of `dim` coordinates around 12 Gaussian centres with varying spread.
pub(crate) fn clustered(n: usize, dim: usize, seed: u64) -> Vec<f32> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let centres: Vec<f32> = (0..12 * dim).map(|_| rng.random_range(-6.0..6.0)).collect();
    let mut out = Vec::with_capacity(n * dim);
    for _ in 0..n {
        let c = rng.random_range(0..12);
        let s = Normal::new(0.0, 0.5 + c as f32 * 0.1).unwrap();
        for d in 0..dim {
            out.push(centres[c * dim + d] + s.sample(&mut rng));
        }
    }
    out
}

#[test]
fn exact_matches_a_sort_of_all_distances() {
    let data = clustered(300, 7, 1);
    let p = Points::new(&data, 7).unwrap();
    let knn = exact(p, 6, &CpuBackend::new(), &|_| {}).unwrap();
    for i in 0..300 {
        let mut all: Vec<(f64, u32)> = (0..300)
            .filter(|&j| j != i)
            .map(|j| {
                let d: f64 = p
                    .row(i)
                    .iter()
                    .zip(p.row(j))
                    .map(|(a, b)| (*a as f64 - *b as f64).powi(2))
                    .sum();
                (d, j as u32)
            })
            .collect();
        all.sort_by(|a, b| a.partial_cmp(b).unwrap());
        assert_eq!(knn.row(i)[0], i as u32);
        let want: Vec<u32> = all[..5].iter().map(|x| x.1).collect();
        assert_eq!(&knn.row(i)[1..], &want[..], "row {i}");
        for (s, x) in all[..5].iter().enumerate() {
            assert!((knn.row_distances(i)[s + 1] as f64 - x.0.sqrt()).abs() < 1e-5);
        }
    }
}

#[test]
fn heaps_widen_with_the_intrinsic_dimension_and_the_points() {
    assert_eq!(heap_factor(10.0, 100_000), 1.5);
    assert_eq!(heap_factor(24.0, 100_000), 1.75);
    assert_eq!(heap_factor(40.0, 100_000), 2.0);
    // From 250k to 1M points, high dimensions up to half again; low ones need no more.
    assert_eq!(heap_factor(40.0, 1_000_000), 3.0);
    assert_eq!(heap_factor(10.0, 4_000_000), 1.5);
    assert!((heap_factor(40.0, 500_000) - 2.5).abs() < 1e-12);
    assert!((heap_factor(24.0, 1_000_000) - 2.25).abs() < 1e-12);
}

/// Points uniform in a cube of `d` dimensions, embedded in `dim ≥ d` (the rest zeros).
fn cube(n: usize, d: usize, dim: usize, seed: u64) -> Vec<f32> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..n * dim)
        .map(|e| {
            if e % dim < d {
                rng.random_range(0.0..1.0)
            } else {
                0.0
            }
        })
        .collect()
}

#[test]
fn the_check_estimates_the_intrinsic_dimension() {
    // Uniform data of 3 and of 12 dimensions in 30 coordinates: the MLE over 14 neighbours
    // is near the truth (it runs low in higher dimensions at this n).
    for (d, lo, hi) in [(3, 2.5, 3.6), (12, 8.5, 13.0)] {
        let x = cube(20_000, d, 30, d as u64);
        let check = Check::new(Points::new(&x, 30).unwrap(), 14, 1);
        assert_eq!(check.ids.len(), CHECK_SAMPLE);
        let lid = check.intrinsic_dim();
        assert!(lid > lo && lid < hi, "{d} dimensions: estimated {lid}");
        // The checked neighbours are the exact ones.
        let p = Points::new(&x, 30).unwrap();
        for (c, &id) in check.ids.iter().enumerate().take(5) {
            let mut all: Vec<(f32, u32)> = (0..20_000u32)
                .filter(|&j| j != id)
                .map(|j| (sq_dist_f32(p.row(id as usize), p.row(j as usize)), j))
                .collect();
            all.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            assert_eq!(&check.truth[c * 14..(c + 1) * 14], &all[..14]);
        }
    }
}

#[test]
fn duplicated_cells_do_not_grow_the_heaps() {
    // Half the cells are copies of 40 cells (~75 copies each, all at distance 0 from one
    // another): any 14 of a copy's twins are its nearest, so the check must not ask for the
    // 14 of lowest index (which the search has no reason to find) and grow the heaps for them.
    let (n, dim, k) = (6007, 20, 15);
    let mut data = clustered(n, dim, 7);
    for c in 0..n / 2 {
        let src = n / 2 + c % 40;
        let row: Vec<f32> = data[src * dim..(src + 1) * dim].to_vec();
        data[c * dim..(c + 1) * dim].copy_from_slice(&row);
    }
    let p = Points::new(&data, dim).unwrap();
    let truth = exact(p, k, &CpuBackend::new(), &|_| {}).unwrap();
    let (found, report) = nn_descent(p, k, &DescentOptions::for_n(n, k, 0), &|_| {}).unwrap();
    assert_eq!(report.grows, 0, "{report:?}");
    // Recall with ties: a neighbour no farther than the exact (k − 1)-th counts (the exact
    // search's distances are rounded from f64, the search's computed in f32: a little slack).
    let mut hits = 0;
    for i in 0..n {
        let bound = truth.row_distances(i)[k - 1] * (1.0 + 1e-5);
        hits += found.row_distances(i)[1..]
            .iter()
            .filter(|&&d| d <= bound)
            .count();
    }
    let r = hits as f64 / (n * (k - 1)) as f64;
    assert!(r >= 0.95, "recall with ties {r} ({report:?})");
    assert!((report.recall - r).abs() < 1e-3, "{report:?} vs {r}");
}

#[test]
fn heaps_grow_until_the_checked_recall_holds() {
    // Heaps of k on hard data (uniform in 24 dimensions) fall short of a recall of 0.99; the
    // search grows them and goes on until the check holds.
    let (n, dim, k) = (6007, 24, 15);
    let data = cube(n, dim, dim, 5);
    let p = Points::new(&data, dim).unwrap();
    let truth = exact(p, k, &CpuBackend::new(), &|_| {}).unwrap();
    let all: Vec<usize> = (0..n).collect();
    let opts = |min_recall| DescentOptions {
        heap_neighbors: Some(k),
        min_recall,
        ..DescentOptions::for_n(n, k, 0)
    };
    let (plain, first) = nn_descent(p, k, &opts(0.0), &|_| {}).unwrap();
    let short = recall(&plain, &truth, &all);
    assert_eq!(
        (first.grows, first.heap_neighbors, first.checked),
        (0, k, 0)
    );
    assert!(first.recall.is_nan());
    assert!(short < 0.99, "heaps of k already recall {short}");
    let (grown, report) = nn_descent(p, k, &opts(0.99), &|_| {}).unwrap();
    let r = recall(&grown, &truth, &all);
    assert!(report.grows > 0 && report.heap_neighbors > k, "{report:?}");
    assert!(r >= 0.99 && r > short, "recall {r} ({report:?})");
    assert!((report.recall - r).abs() < 1e-3, "{report:?} vs {r}");
}

#[test]
fn descent_recalls_the_exact_neighbours() {
    // n prime: no task's range of points divides it evenly.
    let (n, dim, k) = (6007, 20, 15);
    let data = clustered(n, dim, 2);
    let p = Points::new(&data, dim).unwrap();
    let truth = exact(p, k, &CpuBackend::new(), &|_| {}).unwrap();
    let all: Vec<usize> = (0..n).collect();
    // One group of joins per round (the default at this size), and rounds split into groups
    // of 700 points as at a million.
    for group in [JOIN_GROUP, 700] {
        let opts = DescentOptions {
            join_group: group,
            ..DescentOptions::for_n(n, k, 0)
        };
        let (approx, report) = nn_descent(p, k, &opts, &|_| {}).unwrap();
        let r = recall(&approx, &truth, &all);
        assert!(r >= 0.95, "recall {r} with join groups of {group}");
        // Every point was checked (n ≤ CHECK_ALL_MAX): the report's recall is this one.
        assert_eq!(report.checked, n);
        assert!((report.recall - r).abs() < 1e-3, "{report:?} vs {r}");
        for i in 0..n {
            assert_eq!(approx.row(i)[0], i as u32);
            let d = approx.row_distances(i);
            assert!(d.windows(2).all(|w| w[0] <= w[1]));
            // Reported distances are computed afresh, not the search's ‖x‖² + ‖y‖² − 2x·y.
            for (&j, &dj) in approx.row(i).iter().zip(d).skip(1) {
                let want = sq_dist_f32(p.row(i), p.row(j as usize)).sqrt();
                assert_eq!(dj.to_bits(), want.to_bits(), "point {i}, neighbour {j}");
            }
        }
    }
}

#[test]
fn the_search_in_place_finds_the_copying_search_graph() {
    // Several join tasks and waves per group, and groups smaller than a round.
    let (n, dim, k) = (6007, 20, 15);
    let data = clustered(n, dim, 11);
    let p = Points::new(&data, dim).unwrap();
    for group in [JOIN_GROUP, 700] {
        let opts = DescentOptions {
            join_group: group,
            ..DescentOptions::for_n(n, k, 3)
        };
        let (copied, r1) = nn_descent(p, k, &opts, &|_| {}).unwrap();
        let (owned, r2) = nn_descent_owned(data.clone(), dim, k, &opts, &|_| {}).unwrap();
        assert_eq!(owned.indices, copied.indices, "join groups of {group}");
        let bits = |k: &Knn| k.distances.iter().map(|d| d.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&owned), bits(&copied));
        assert_eq!(format!("{r1:?}"), format!("{r2:?}"));
        // And the graph is a real one: each point's row is itself, then true distances.
        for i in (0..n).step_by(97) {
            assert_eq!(owned.row(i)[0], i as u32);
            for (&j, &d) in owned.row(i).iter().zip(owned.row_distances(i)).skip(1) {
                assert_eq!(d, sq_dist_f32(p.row(i), p.row(j as usize)).sqrt());
            }
        }
    }
    // Invalid arguments fail the same way.
    assert!(nn_descent_owned(
        data.clone(),
        dim,
        1,
        &DescentOptions::for_n(n, 1, 0),
        &|_| {}
    )
    .is_err());
    assert!(nn_descent_owned(
        data[..dim * 3 + 1].to_vec(),
        dim,
        2,
        &DescentOptions::for_n(3, 2, 0),
        &|_| {}
    )
    .is_err());
}
