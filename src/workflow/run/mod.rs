//! `scoop run`: the whole workflow in one command, in the fewest passes over the data, resumable.
//!
//! Steps, in order (each recorded in `DIR/run.json` when it finishes):
//! 1. `stats:STEM`, per plate: the statistics pass(es) of `scoop preprocess` (totals and the
//!    highly-variable-gene moments; one pass for `seurat`, two for the other flavors); the
//!    plate's whole HVG table is kept in `DIR/stats/STEM.hvg` ([`hvg_file`]).
//! 2. `select`: the genes highly variable in at least `min_plates` plates (`DIR/genes.tsv`).
//! 3. `merge`, pass 2 per plate: filter, normalize, log1p, subset, written straight into
//!    `DIR/merged.h5ad` ([`merge`]), the PCA gram accumulated from the same chunks
//!    (`DIR/gram.bin`); with `keep_plates` the same chunks also make each plate's `preprocess`
//!    file, `DIR/plates/STEM_preprocessed.h5ad`, committed with the others. When only the plate
//!    files are missing from a fresh record (`keep_plates` added to a finished run), they are
//!    written alone, their rows copied from `merged.h5ad`, and the steps after `merge` stay
//!    fresh ([`MergeMode::PlatesOnly`]).
//! 4. `pca`: the eigendecomposition, then pass 3 over `merged.h5ad`: `DIR/pca.h5ad` and
//!    `DIR/X_pca.zarr`, drawing the subsample's rows on the way ([`project`]). `pca.h5ad`'s X is
//!    an HDF5 external link to `merged.h5ad`'s (by that relative name), not a copy; a merge that
//!    replaces `merged.h5ad` removes `pca.h5ad` first.
//! 5. `subset`: `DIR/subset.h5ad` from the rows `pca` drew; when `pca` was fresh and only
//!    `--subsample` or `--seed` changed, drawn again from `pca.h5ad` (obs and `obsm/X_pca`, not
//!    X).
//! 6. `neighbors`, `umap`, `plot`: on the subset (`DIR/neighbors.h5ad`, `DIR/umap.h5ad`,
//!    `DIR/umap.png`, or `.svg`/`.pdf` by `figure`), through the commands' own workflow functions.
//!
//! Raw plates are streamed twice (three times for `cell_ranger` and `seurat_v3`), the merged
//! matrix once.
//!
//! Resuming: a step is skipped when its record in `run.json` is fresh ([`StepRecord::fresh`]:
//! same parameters, unchanged inputs, intact outputs) and no step before it in the chain ran in
//! this invocation (the per-plate statistics steps are independent of each other). Every output
//! is written under a temporary name and renamed when complete, and `run.json` is rewritten the
//! same way after each step, so a run killed at any moment resumes where it stopped.

pub mod config;
mod embed;
mod gram_file;
mod hvg_file;
pub mod merge;
mod project;
mod runner;
pub mod state;

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::{json, Value};

use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::ops::hvg::Flavor;
use crate::ops::preprocess::{select_genes_by_mask, PlateStats};
use crate::ops::umap::UmapOptions;
use crate::stream::StreamOptions;
use crate::workflow::preprocess::{
    about, open_plate, output_path, plate_stats_with_progress, Plate, PreprocessOptions,
};
pub use config::{RunConfig, RunParams};
use runner::{Outcome, Runner};
pub use runner::{RunSummary, StepReport};
use state::RunState;

/// The per-plate statistics later steps need, as `run.json` keeps them.
fn stats_result(st: &PlateStats) -> Value {
    let hv: Vec<usize> = (0..st.hvg.highly_variable.len())
        .filter(|&j| st.hvg.highly_variable[j])
        .collect();
    json!({
        "cells": st.cells,
        "zero_count_cells": st.zero_count_cells,
        "nnz": st.nnz,
        "target_sum": st.target_sum,
        "genes_detected": st.genes_detected,
        "highly_variable": hv,
    })
}

/// Reads a field of a recorded result; a record that lacks it is reported against `run.json`.
fn field<T: serde::de::DeserializeOwned>(
    state_path: &Path,
    step: &str,
    result: &Value,
    key: &str,
) -> Result<T> {
    serde_json::from_value(result[key].clone()).map_err(|e| {
        Error::format(
            state_path,
            format!("steps/{step}/result/{key}"),
            format!("{e}; remove run.json to start afresh"),
        )
    })
}

/// Runs the workflow `config` describes; see the module docs. `backend` runs the kernels.
pub fn run(config: &RunConfig, backend: &dyn Backend) -> Result<RunSummary> {
    let started = Instant::now();
    let params = config.params()?;
    let dir = config
        .out_dir
        .clone()
        .ok_or_else(|| Error::InvalidArgument("name an output directory (--out-dir)".into()))?;
    // Absolute paths in run.json, so a rerun from another directory recognizes its files.
    let dir = std::path::absolute(&dir).map_err(|e| Error::io(&dir, e))?;
    let plate_paths = config
        .plates
        .iter()
        .map(|p| std::path::absolute(p).map_err(|e| Error::io(p, e)))
        .collect::<Result<Vec<_>>>()?;
    if config.plates.is_empty() {
        return Err(Error::InvalidArgument(
            "run needs at least one plate".into(),
        ));
    }
    let n_plates = config.plates.len();
    let min_plates = match params.min_plates {
        Some(m) if m > n_plates => {
            return Err(Error::InvalidArgument(format!(
                "--min-plates {m} with {n_plates} plate(s): must be between 1 and the number of \
                 plates"
            )))
        }
        Some(m) => m,
        None => config::DEFAULT_MIN_PLATES.min(n_plates),
    };
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    // What killed runs left (staging directories of ended processes) is removed or completed.
    crate::io::output::recover(&dir);
    crate::io::output::recover(&dir.join(merge::PLATES_DIR));
    let stream = StreamOptions {
        chunk_rows: config.chunk_rows,
        chunk_values: config.chunk_values,
        ..StreamOptions::default()
    };

    // Open and check every plate before computing anything.
    let mut plates: Vec<Plate> = Vec::new();
    let mut genes: Option<Vec<String>> = None;
    for path in &plate_paths {
        let (plate, names) = open_plate(path, &dir, params.filter.as_ref())?;
        match &genes {
            None => genes = Some(names),
            Some(g) if *g != names => {
                return Err(Error::format(
                    path,
                    "/var",
                    format!(
                        "its genes differ from {}'s; plates must share var",
                        config.plates[0].display()
                    ),
                ))
            }
            Some(_) => {}
        }
        if plates.iter().any(|p| p.stem == plate.stem) {
            return Err(Error::InvalidArgument(format!(
                "two plates have the file stem {:?}; the plate label needs distinct names",
                plate.stem
            )));
        }
        plates.push(plate);
    }
    let genes = genes.expect("at least one plate");
    check_colors(&config.plates[0], &params.color)?;
    let carried = merge::carried(&plates, genes.len())?;
    let keys: Vec<String> = plates.iter().map(|p| p.stem.clone()).collect();

    let state_path = dir.join("run.json");
    let mut state = RunState::load(&state_path)?;
    state.scoop_version = env!("CARGO_PKG_VERSION").into();
    state.params = serde_json::to_value(config).expect("a config serializes");
    state.backend = backend.name().to_string();
    state.devices = config.devices.clone();
    state.last_run = Default::default();
    let mut r = Runner {
        state,
        state_path: state_path.clone(),
        dirty: false,
        reports: Vec::new(),
    };

    // Pass 1: statistics per plate.
    let p = &params.preprocess;
    let stats_params = json!({
        "filter": config.filter,
        "target_sum": p.target_sum.to_string(),
        "flavor": p.flavor.name(),
        "n_top_genes": p.n_top_genes,
        "n_bins": p.n_bins,
        "span": p.span,
    });
    let stat_passes = if p.flavor == Flavor::Seurat { 1 } else { 2 };
    let pre_opts = PreprocessOptions {
        inputs: plate_paths.clone(),
        out_dir: dir.clone(),
        filter: params.filter.clone(),
        params: *p,
        min_plates,
        stream,
        compression: params.compression,
        force: true,
        quiet: config.quiet,
    };
    let mut plate_results = Vec::new();
    let hvg_paths: Vec<PathBuf> = keys
        .iter()
        .map(|k| dir.join("stats").join(format!("{k}.hvg")))
        .collect();
    for (plate, hvg_path) in plates.iter().zip(&hvg_paths) {
        let name = format!("stats:{}", plate.stem);
        let mut params = stats_params.clone();
        params["hvg_table"] = json!(hvg_path);
        let res = r.step(
            &name,
            params,
            std::slice::from_ref(&plate.path),
            false,
            || {
                let kept = plate.selection.count(plate.n_obs) as u64;
                let st = plate_stats_with_progress(plate, &pre_opts, backend, &plate.stem, kept)
                    .map_err(|e| about(&plate.path, "/X", e))?;
                hvg_file::save(hvg_path, &st.hvg)?;
                Ok(Outcome {
                    reads: vec![(
                        stat_passes,
                        st.cells * stat_passes as u64,
                        st.nnz * stat_passes as u64,
                    )],
                    outputs: vec![hvg_path.clone()],
                    cells: st.cells * stat_passes as u64,
                    values: st.nnz * stat_passes as u64,
                    result: stats_result(&st),
                })
            },
        )?;
        plate_results.push(res);
    }
    // Stats were recorded in the latest ran-or-skipped step of each plate; a stats step
    // that ran makes the chain below run.
    r.dirty = r.reports.iter().any(|s| s.ran);
    let mut target_sums = Vec::new();
    let mut masks = Vec::new();
    let mut n_obs = 0u64;
    let mut plate_nnz = Vec::new();
    for (plate, res) in plates.iter().zip(&plate_results) {
        let name = format!("stats:{}", plate.stem);
        target_sums.push(field::<f32>(&state_path, &name, res, "target_sum")?);
        n_obs += field::<u64>(&state_path, &name, res, "cells")?;
        plate_nnz.push(field::<u64>(&state_path, &name, res, "nnz")?);
        let hv: Vec<usize> = field(&state_path, &name, res, "highly_variable")?;
        let mut m = vec![false; genes.len()];
        for j in hv {
            if let Some(x) = m.get_mut(j) {
                *x = true;
            }
        }
        masks.push(m);
    }

    // Gene selection.
    let genes_tsv = dir.join("genes.tsv");
    let sel = r.step(
        "select",
        json!({ "min_plates": min_plates, "plates": keys }),
        &[],
        true,
        || {
            let views: Vec<&[bool]> = masks.iter().map(|m| &m[..]).collect();
            let (counts, selected) = select_genes_by_mask(&views, min_plates)?;
            let kept: Vec<usize> = (0..selected.len()).filter(|&j| selected[j]).collect();
            if kept.is_empty() {
                return Err(Error::InvalidArgument(format!(
                    "no gene is highly variable in {min_plates} or more plates; lower \
                     --min-plates or raise --n-top-genes"
                )));
            }
            let mut tsv = String::from("gene\tn_plates\n");
            for &j in &kept {
                tsv.push_str(&format!("{}\t{}\n", genes[j], counts[j]));
            }
            write_text(&genes_tsv, &tsv)?;
            Ok(Outcome {
                reads: vec![],
                outputs: vec![genes_tsv.clone()],
                cells: 0,
                values: 0,
                result: json!({ "selected": kept }),
            })
        },
    )?;
    let kept: Vec<usize> = field(&state_path, "select", &sel, "selected")?;
    let mut selected = vec![false; genes.len()];
    for &j in &kept {
        if j < selected.len() {
            selected[j] = true;
        }
    }

    // Pass 2: merged.h5ad, the gram and, with keep_plates, the plate files.
    let (merged_path, gram_path) = merge::outputs(&dir);
    let (pca_path, zarr_path, subset_path) = (
        dir.join("pca.h5ad"),
        dir.join("X_pca.zarr"),
        dir.join("subset.h5ad"),
    );
    let plate_files: Vec<PathBuf> = plates
        .iter()
        .map(|p| output_path(&dir.join(merge::PLATES_DIR), &p.path))
        .collect();
    let mut merge_params = json!({
        "compression": params.compression.to_string(),
        "label": merge::LABEL,
        "keys": keys,
    });
    // What merged.h5ad carries besides X and obs, named only when there is something: a record
    // written before layers and obsm were carried then no longer matches, and its merge runs
    // again, while plates without them keep their records.
    let obsm = carried.obsm_keys();
    if !carried.layers.is_empty() || !obsm.is_empty() {
        merge_params["layers"] = json!(carried.layers);
        merge_params["obsm"] = json!(obsm);
    }
    let merge_step = merge_step(
        &mut r,
        &merge_params,
        config.keep_plates,
        &[merged_path.clone(), gram_path.clone()],
    );
    let dirty = r.dirty;
    let mut outputs = vec![merged_path.clone(), gram_path.clone()];
    let mut inputs = plate_paths.clone();
    if config.keep_plates {
        outputs.extend(plate_files.iter().cloned());
    }
    if matches!(merge_step.mode, MergeMode::PlatesOnly { .. }) {
        inputs.push(merged_path.clone());
    }
    r.step("merge", merge_step.params.clone(), &inputs, true, || {
        // The plates' HVG tables (var's columns of the plate files).
        let tables = if config.keep_plates {
            hvg_paths
                .iter()
                .map(|p| hvg_file::load(p))
                .collect::<Result<Vec<_>>>()?
        } else {
            Vec::new()
        };
        let plan = merge::MergePlan {
            plates: &plates,
            keys: &keys,
            target_sums: &target_sums,
            genes: &genes,
            selected: &selected,
            kept_nnz: plate_nnz.iter().sum(),
            plate_files: config.keep_plates.then_some(merge::PlateFiles {
                paths: &plate_files,
                tables: &tables,
                nnz: &plate_nnz,
            }),
            carried: &carried,
            linked: std::slice::from_ref(&pca_path),
        };
        match &merge_step.mode {
            MergeMode::PlatesOnly { result } => {
                let rows = merge::plates_from_merged(
                    &plan,
                    &merged_path,
                    params.compression,
                    config.chunk_rows,
                    config.quiet,
                )?;
                let values = result["nnz"].as_u64().unwrap_or(0);
                let mut reads = vec![(0, 0, 0); plate_paths.len()];
                reads.push((1, rows, values));
                Ok(Outcome {
                    reads,
                    outputs,
                    cells: rows,
                    values,
                    result: result.clone(),
                })
            }
            MergeMode::Full => {
                let m = merge::merge(
                    &plan,
                    &merged_path,
                    &gram_path,
                    params.compression,
                    stream,
                    backend,
                    config.quiet,
                )?;
                Ok(Outcome {
                    reads: m.read.iter().map(|&(c, v)| (1, c, v)).collect(),
                    outputs,
                    cells: m.n_obs as u64,
                    values: m.read.iter().map(|&(_, v)| v).sum(),
                    result: json!({
                        "n_obs": m.n_obs,
                        "n_vars": m.n_vars,
                        "nnz": m.nnz,
                        "layers": m.layers,
                        "obsm": m.obsm,
                        "left_out": m.left_out,
                    }),
                })
            }
        }
    })?;
    if matches!(merge_step.mode, MergeMode::PlatesOnly { .. }) {
        // merged.h5ad and gram.bin were left as they were: the steps reading them stay fresh.
        r.dirty = dirty;
    }

    // Eigendecomposition and pass 3.
    let n_comps = project::resolve_n_comps(params.n_comps, n_obs, kept.len())?;
    let subsample = params.subsample.min(n_obs as usize).max(1);
    // The subsample's rows, when the projection drew them in this invocation.
    let mut drawn: Option<project::Drawn> = None;
    r.step(
        "pca",
        json!({
            "n_comps": n_comps,
            "solver": "auto",
            "chunk_rows": config.chunk_rows,
        }),
        &[gram_path.clone(), merged_path.clone()],
        true,
        || {
            let pr = project::project(
                &project::ProjectPaths {
                    merged: &merged_path,
                    gram: &gram_path,
                    pca: &pca_path,
                    zarr: &zarr_path,
                },
                n_comps,
                subsample,
                params.seed,
                stream,
                backend,
                config.quiet,
            )?;
            drawn = Some(pr.drawn);
            Ok(Outcome {
                reads: vec![(0, 0, 0), (1, n_obs, pr.values)],
                outputs: vec![pca_path.clone(), zarr_path.clone()],
                cells: n_obs,
                values: pr.values,
                result: json!({
                    "n_comps": pr.fit.k,
                    "variance_ratio": pr.fit.variance_ratio,
                    "eigen_seconds": pr.eigen_seconds,
                    "project_seconds": pr.project_seconds,
                }),
            })
        },
    )?;
    // The subset: the rows the projection drew, or (pca fresh, another size or seed) drawn
    // again from pca.h5ad's obs and X_pca without reading merged X.
    r.step(
        "subset",
        json!({ "subsample": subsample, "seed": params.seed }),
        std::slice::from_ref(&pca_path),
        true,
        || {
            let block = config.chunk_rows.max(1);
            let (rows, passes) = match drawn.take() {
                Some(d) => {
                    project::write_drawn_subset(&pca_path, &subset_path, &d, block)?;
                    (d.rows.len(), 0)
                }
                None => (
                    project::subset_of_pca(
                        &pca_path,
                        &subset_path,
                        subsample,
                        params.seed,
                        block,
                        config.quiet,
                    )?,
                    1,
                ),
            };
            Ok(Outcome {
                reads: vec![(passes, passes as u64 * n_obs, 0)],
                outputs: vec![subset_path.clone()],
                cells: rows as u64,
                values: 0,
                result: json!({ "subset_rows": rows, "from_projection": passes == 0 }),
            })
        },
    )?;

    // The subset: neighbors, UMAP, the figure.
    let neighbors_path = dir.join("neighbors.h5ad");
    r.step(
        "neighbors",
        json!({ "n_neighbors": params.n_neighbors, "seed": params.seed, "use_rep": "X_pca" }),
        std::slice::from_ref(&subset_path),
        true,
        || {
            embed::neighbors_step(
                &subset_path,
                &neighbors_path,
                &params,
                backend,
                config.quiet,
            )
        },
    )?;
    let umap_path = dir.join("umap.h5ad");
    let umap_opts = UmapOptions {
        seed: params.seed,
        ..UmapOptions::default()
    };
    r.step(
        "umap",
        json!({ "umap": format!("{umap_opts:?}") }),
        std::slice::from_ref(&neighbors_path),
        true,
        || {
            embed::umap_step(
                &neighbors_path,
                &umap_path,
                umap_opts,
                backend,
                config.quiet,
            )
        },
    )?;
    let figure = dir.join(format!("umap.{}", params.figure.extension()));
    r.step(
        "plot",
        json!({ "color": params.color, "figure": params.figure.to_string() }),
        std::slice::from_ref(&umap_path),
        true,
        || embed::plot_step(&umap_path, &figure, &params.color, subsample as u64),
    )?;
    // Saved once more: a run that skipped everything still records this invocation.
    r.state.save(&state_path)?;
    let summary = RunSummary {
        steps: r.reports,
        run_json: state_path,
        seconds: started.elapsed().as_secs_f64(),
        backend: backend.name().to_string(),
    };
    crate::events::emit(
        "run_finish",
        json!({
            "seconds": summary.seconds,
            "backend": summary.backend,
            "ran": r.state.last_run.ran,
            "skipped": r.state.last_run.skipped,
            "run_json": summary.run_json,
            "outputs": summary.steps.iter().flat_map(|s| &s.outputs).collect::<Vec<_>>(),
        }),
    );
    Ok(summary)
}

/// How the merge step runs when it runs.
enum MergeMode {
    /// Pass 2 over the raw plates: `merged.h5ad`, `gram.bin` and, with `keep_plates`, the plate
    /// files.
    Full,
    /// Only the plate files, their rows read from `merged.h5ad`, which (with `gram.bin`) stands:
    /// a finished run's record, same plates and parameters, lacks plate files `keep_plates`
    /// asks for. `result` is the standing record's.
    PlatesOnly { result: Value },
}

/// The merge step's parameters and mode.
struct MergeStep {
    params: Value,
    mode: MergeMode,
}

/// Decides the merge step's parameters (`base`, plus `"keep_plates": true` with `keep_plates`)
/// and its mode, against its record. Without `keep_plates`, a record of a merge that also wrote
/// plate files stands for one that did not: the record stops tracking them (the files are left
/// where they are). With `keep_plates`, a record whose inputs and parameters are unchanged and
/// whose `main` outputs (`merged.h5ad`, `gram.bin`) are intact, with nothing before it rerun,
/// needs only the plate files ([`MergeMode::PlatesOnly`]).
fn merge_step(r: &mut Runner, base: &Value, keep_plates: bool, main: &[PathBuf]) -> MergeStep {
    let mut with_plates = base.clone();
    with_plates["keep_plates"] = json!(true);
    let base_hash = state::hash_text(&base.to_string());
    let plates_hash = state::hash_text(&with_plates.to_string());
    if !keep_plates {
        if let Some(rec) = r.state.steps.iter_mut().find(|s| s.name == "merge") {
            if rec.params_hash == plates_hash {
                rec.params = base.clone();
                rec.params_hash = base_hash;
                rec.outputs.retain(|o| main.contains(&o.path));
            }
        }
        return MergeStep {
            params: base.clone(),
            mode: MergeMode::Full,
        };
    }
    let standing = r.state.step("merge").filter(|rec| {
        let mut rec = (*rec).clone();
        rec.outputs.retain(|o| main.contains(&o.path));
        !r.dirty
            && rec.outputs.len() == main.len()
            && (rec.fresh(&base_hash) || rec.fresh(&plates_hash))
    });
    MergeStep {
        params: with_plates,
        mode: match standing {
            Some(rec) => MergeMode::PlatesOnly {
                result: rec.result.clone(),
            },
            None => MergeMode::Full,
        },
    }
}

/// Checks that every color is an obs column of the plates or the plate label.
fn check_colors(first_plate: &Path, color: &[String]) -> Result<()> {
    let f = crate::io::H5adReader::open(first_plate)?;
    let obs = f.obs_reader()?;
    for c in color {
        if c != merge::LABEL && !obs.column_names().contains(c) {
            return Err(Error::format(
                first_plate,
                "/obs",
                format!(
                    "--color {c:?}: no such column (columns: {}, and the label {:?})",
                    obs.column_names().join(", "),
                    merge::LABEL
                ),
            ));
        }
    }
    Ok(())
}

/// Writes text to `path` whole or not at all ([`crate::io::output::write_file`]).
fn write_text(path: &Path, text: &str) -> Result<()> {
    crate::io::output::write_file(path, text.as_bytes())
}
