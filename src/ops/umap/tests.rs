//! The layout's pieces against serial walks, umap-learn's values and its placement rules.

use super::edges::*;
use super::init::*;
use super::*;
use crate::backend::EdgeList;
use crate::ops::spectral::components;

#[test]
fn renumbering_keeps_the_problem_and_groups_near_points() {
    // 4 × 50 points on two well-separated lines per axis: a Z-order keeps each 2 × 2 cell
    // of the plane (one quadrant of 50 points) contiguous.
    let dim = 2;
    let mut emb = Vec::new();
    for i in 0..200 {
        let (qx, qy) = ((i % 2) as f32 * 100.0, ((i / 2) % 2) as f32 * 100.0);
        emb.extend([qx + (i % 7) as f32 * 0.1, qy + (i % 5) as f32 * 0.1]);
    }
    let order = z_order(&emb, dim);
    let mut seen = order.clone();
    seen.sort_unstable();
    assert_eq!(seen, (0..200).collect::<Vec<u32>>(), "a permutation");
    let quadrant = |p: u32| (p % 2, (p / 2) % 2);
    for run in order.chunks(50) {
        assert!(
            run.iter().all(|&p| quadrant(p) == quadrant(run[0])),
            "{run:?}"
        );
    }
    // Edges grouped by head (as `edge_list` makes them), renumbered and back again.
    let edges = EdgeList {
        head: vec![0, 0, 3, 7, 7, 7, 150],
        tail: vec![5, 199, 1, 2, 8, 0, 3],
        epochs_per_sample: vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0],
    };
    let start = head_offsets(&edges, emb.len() / dim);
    let (local, moved) = renumbered(&emb, dim, &edges, &start, &order);
    assert!(
        moved.head.windows(2).all(|w| w[0] <= w[1]),
        "grouped by new head"
    );
    let mut back: Vec<(u32, u32, f32)> = (0..moved.head.len())
        .map(|e| {
            let (h, t) = (moved.head[e] as usize, moved.tail[e] as usize);
            assert_eq!(
                local[h * dim..h * dim + dim],
                emb[order[h] as usize * dim..][..dim]
            );
            (order[h], order[t], moved.epochs_per_sample[e])
        })
        .collect();
    back.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let mut want: Vec<(u32, u32, f32)> = (0..edges.head.len())
        .map(|e| (edges.head[e], edges.tail[e], edges.epochs_per_sample[e]))
        .collect();
    want.sort_by(|a, b| a.partial_cmp(b).unwrap());
    assert_eq!(back, want);
}

/// A random graph of `n` rows (0 to 12 entries each, some of them weak enough to prune).
fn random_graph(n: usize, seed: u64) -> Graph {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let rows = (0..n)
        .map(|_| {
            let mut cols: Vec<u32> = (0..rng.random_range(0..13))
                .map(|_| rng.random_range(0..n as u32))
                .collect();
            cols.sort_unstable();
            cols.dedup();
            cols.into_iter()
                .map(|j| (j, rng.random_range(0.0f32..1.0)))
                .collect()
        })
        .collect();
    Graph::from_rows(rows)
}

#[test]
fn edge_lists_and_renumbering_match_a_serial_walk() {
    // Rows over several tasks of `fill_rows`, and a row count that is not a multiple.
    let n = 3 * FILL_ROWS_PER_TASK + 123;
    let g = random_graph(n, 5);
    let w_max = max_weight(&g);
    let n_epochs = 20;
    let cut = w_max / n_epochs as f32;
    let mut want = EdgeList::default();
    for i in 0..n {
        for (&j, &w) in g.row(i).0.iter().zip(g.row(i).1) {
            if w >= cut && w > 0.0 {
                want.head.push(i as u32);
                want.tail.push(j);
                want.epochs_per_sample.push(w_max / w);
            }
        }
    }
    let got = edge_list(&g, w_max, n_epochs);
    assert!(want.head.len() < g.data.len(), "some edges pruned");
    assert_eq!(
        (&got.head, &got.tail, &got.epochs_per_sample),
        (&want.head, &want.tail, &want.epochs_per_sample)
    );
    // Renumbered along a random order: each new head's edges are its old head's, in order.
    let dim = 3;
    let mut rng = rand::rngs::StdRng::seed_from_u64(6);
    let emb: Vec<f32> = (0..n * dim).map(|_| rng.random()).collect();
    let mut order: Vec<u32> = (0..n as u32).collect();
    rand::seq::SliceRandom::shuffle(&mut order[..], &mut rng);
    let mut rank = vec![0u32; n];
    for (pos, &p) in order.iter().enumerate() {
        rank[p as usize] = pos as u32;
    }
    let mut moved_want = EdgeList::default();
    for (pos, &p) in order.iter().enumerate() {
        let from = want.head.partition_point(|&h| h < p);
        let to = want.head.partition_point(|&h| h <= p);
        for e in from..to {
            moved_want.head.push(pos as u32);
            moved_want.tail.push(rank[want.tail[e] as usize]);
            moved_want.epochs_per_sample.push(want.epochs_per_sample[e]);
        }
    }
    let (local, moved) = renumbered(&emb, dim, &want, &head_offsets(&want, n), &order);
    assert_eq!(
        (&moved.head, &moved.tail, &moved.epochs_per_sample),
        (
            &moved_want.head,
            &moved_want.tail,
            &moved_want.epochs_per_sample
        )
    );
    for (pos, &p) in order.iter().enumerate() {
        assert_eq!(local[pos * dim..][..dim], emb[p as usize * dim..][..dim]);
    }
}

#[test]
fn given_starts_are_kept_and_repeated_rows_jittered() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(4);
    // Distinct rows (one pair equal in x, another with −0 against 0 in one coordinate
    // only): kept bit for bit.
    let distinct = [0.0f32, 1.0, 0.0, 2.0, -0.0, 3.0, 5.0, 3.0, 4.0, 4.0];
    let (y, init) = given_start(&distinct, 5, 2, &mut rng).unwrap();
    assert!(matches!(init, Init::Given { jittered: false }));
    assert_eq!(y, distinct.to_vec());
    // Rows 0 and 3 equal (−0 counts as 0), on a grid of spacing 1: noise of 0.001 x the
    // mean nearest distance (here (4 x 1 + 0) / 5 = 0.8 for the 5 rows sampled), so every
    // coordinate moves, by far less than the spacing.
    let repeated = [0.0f32, 0.0, 1.0, 0.0, 2.0, 0.0, -0.0, 0.0, 3.0, 0.0];
    let (y, init) = given_start(&repeated, 5, 2, &mut rng).unwrap();
    assert!(matches!(init, Init::Given { jittered: true }));
    assert_ne!(y[0..2], y[6..8]);
    let moved: Vec<f32> = y
        .iter()
        .zip(&repeated)
        .map(|(a, b)| (a - b).abs())
        .collect();
    assert!(moved.iter().all(|&m| m > 0.0 && m < 0.008), "{moved:?}");
    assert!(moved.iter().any(|&m| m > 1e-5), "{moved:?}");
    // Wrong sizes and non-finite values are refused.
    assert!(given_start(&repeated, 4, 2, &mut rng).is_err());
    assert!(given_start(&[0.0, f32::NAN], 1, 2, &mut rng).is_err());
}

#[test]
fn layout_dimensions_out_of_range_are_refused() {
    let g = random_graph(50, 1);
    for dim in [0, MAX_LAYOUT_DIM + 1] {
        let opts = UmapOptions {
            dim,
            ..UmapOptions::default()
        };
        let err = umap(
            &g,
            &|_| Ok(false),
            Start::Spectral,
            &opts,
            &crate::backend::CpuBackend::new(),
            &|_| {},
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("--n-components"), "{err}");
    }
}

#[test]
fn components_go_where_umaps_component_layout_puts_them() {
    // umap-learn's `component_layout` of 9 components' points
    // (tests/python/make_neighbors_fixtures.py).
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/neighbors/component_layout.json"
    );
    let case: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let floats = |key: &str| -> Vec<f64> {
        case[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect()
    };
    let (width, dim) = (
        case["width"].as_u64().unwrap() as usize,
        case["dim"].as_u64().unwrap() as usize,
    );
    let data: Vec<f32> = floats("data").iter().map(|&v| v as f32).collect();
    let label: Vec<u32> = floats("labels").iter().map(|&v| v as u32).collect();
    let want = floats("layout");
    let n_comp = want.len() / dim;
    // Streamed in uneven blocks: the centroids do not depend on how the rows arrive.
    let source = |visit: &mut RowVisitor<'_>| -> Result<bool> {
        for block in data.chunks(3 * width) {
            visit(block, width)?;
        }
        Ok(true)
    };
    let whole = |visit: &mut RowVisitor<'_>| -> Result<bool> {
        visit(&data, width)?;
        Ok(true)
    };
    assert_eq!(
        component_centroids(&label, n_comp, &source).unwrap(),
        component_centroids(&label, n_comp, &whole).unwrap()
    );
    let centroids = component_centroids(&label, n_comp, &source)
        .unwrap()
        .unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let got = meta_embedding(
        Placement::Centroids,
        n_comp,
        dim,
        Some(&centroids),
        &mut rng,
    )
    .unwrap();
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert!((g - w).abs() < 1e-6, "entry {i}: {g} vs umap-learn's {w}");
    }
}

#[test]
fn few_components_sit_on_unit_vectors_and_no_data_means_random() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    // umap: k = ⌈n/2⌉ rows of [I_k 0], then their negatives, the first n_comp kept.
    let three = meta_embedding(Placement::UnitVectors, 3, 2, None, &mut rng).unwrap();
    assert_eq!(three, vec![1.0, 0.0, 0.0, 1.0, -1.0, 0.0]);
    let two = meta_embedding(Placement::UnitVectors, 2, 3, None, &mut rng).unwrap();
    assert_eq!(two, vec![1.0, 0.0, 0.0, -1.0, 0.0, 0.0]);
    // More than 2·dim components without source data: uniform in [0, 10).
    let many = meta_embedding(Placement::Random, 7, 2, None, &mut rng).unwrap();
    assert_eq!(many.len(), 14);
    assert!(many.iter().all(|v| (0.0..10.0).contains(v)));
    assert!(many.windows(2).any(|w| w[0] != w[1]));
}

#[test]
fn each_component_gets_half_the_distance_to_its_nearest() {
    let meta = [0.0, 0.0, 3.0, 0.0, 0.0, 1.0];
    assert_eq!(half_nearest(&meta, 2), vec![0.5, 1.5, 0.5]);
    assert_eq!(half_nearest(&[2.0, 2.0, 2.0, 2.0], 2), vec![1.0, 1.0]);
}

#[test]
fn thousands_of_lone_cells_go_on_a_grid_without_reading_the_data() {
    // No edge survives the pruning: every cell is a component of its own.
    let n = META_MAX + 1;
    let g = Graph {
        n,
        indptr: vec![0; n + 1],
        indices: Vec::new(),
        data: Vec::new(),
    };
    let source = |_: &mut RowVisitor<'_>| -> Result<bool> {
        panic!("the source data is not needed for a grid")
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let (y, init) =
        spectral_init(&g, 2, &source, &mut rng, &crate::backend::CpuBackend::new()).unwrap();
    assert!(matches!(
        init,
        Init::Spectral {
            components,
            placement: Placement::Grid,
            ..
        } if components == n
    ));
    // Each cell within half a grid step of its own grid point.
    let side = (n as f64).sqrt().ceil() as usize;
    let (label, _) = components(&g);
    for (i, &c) in label.iter().enumerate() {
        let c = c as usize;
        assert!((y[2 * i] - (c % side) as f64).abs() <= 0.5);
        assert!((y[2 * i + 1] - (c / side) as f64).abs() <= 0.5);
    }
}

#[test]
fn ab_fit_matches_umap_learn() {
    // umap-learn 0.5 / scanpy for min_dist = 0.5, spread = 1 (spec §9), and umap's own
    // default min_dist = 0.1.
    let (a, b) = find_ab_params(1.0, 0.5);
    assert!((a - 0.5830300203968329).abs() < 1e-5, "a = {a}");
    assert!((b - 1.3341669926352966).abs() < 1e-5, "b = {b}");
    let (a, b) = find_ab_params(1.0, 0.1);
    assert!((a - 1.576943460405378).abs() < 1e-4, "a = {a}");
    assert!((b - 0.8950608781227859).abs() < 1e-4, "b = {b}");
}

#[test]
fn centroids_refuse_source_data_that_does_not_match_the_graph() {
    let label = [0u32, 1, 0, 2];
    let rows = [1f32, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0];
    let short = |visit: &mut RowVisitor<'_>| -> Result<bool> {
        visit(&rows[..6], 2)?;
        Ok(true)
    };
    let long = |visit: &mut RowVisitor<'_>| -> Result<bool> {
        visit(&rows, 2)?;
        visit(&rows[..2], 2)?;
        Ok(true)
    };
    let ragged = |visit: &mut RowVisitor<'_>| -> Result<bool> {
        visit(&rows[..4], 2)?;
        visit(&rows[4..], 4)?;
        Ok(true)
    };
    for source in [&short as SourceData<'_>, &long, &ragged] {
        assert!(component_centroids(&label, 3, source).is_err());
    }
    let none = |_: &mut RowVisitor<'_>| -> Result<bool> { Ok(false) };
    assert_eq!(component_centroids(&label, 3, &none).unwrap(), None);
    let good = |visit: &mut RowVisitor<'_>| -> Result<bool> {
        visit(&rows[..2], 2)?;
        visit(&rows[2..], 2)?;
        Ok(true)
    };
    let (c, w) = component_centroids(&label, 3, &good).unwrap().unwrap();
    assert_eq!(w, 2);
    assert_eq!(c, vec![3.0, 4.0, 3.0, 4.0, 7.0, 8.0]);
}
