//! Pass 2 of `scoop run`: each plate's kept cells are normalized, log-transformed and subset to
//! the selected genes, and written straight into `DIR/merged.h5ad`, while the same chunks feed
//! the PCA gram.
//!
//! `merged.h5ad` holds what `scoop preprocess` then `scoop concat --label plate --keys STEMS`
//! would write: X one CSR over all plates (plates in input order, kept cells in file order), var
//! the selected genes' names only (concat keeps no var columns), obs each plate's kept rows
//! with unused categories dropped per plate (as `preprocess` writes them), joined as `concat`
//! joins them (columns every plate has, categories unified) plus the categorical `plate` label.

use std::path::{Path, PathBuf};

use crate::backend::{Backend, GeneSubset, Gram};
use crate::error::{Error, Result};
use crate::io::concat::{convert, plan_column, Target};
use crate::io::dataframe::{Categories, Column, ColumnValues, DataFrame, DataFrameWriter};
use crate::io::subset::{apply_remaps, used_categories, CategoryRemap, RowPick};
use crate::io::{
    CsrChunk, CsrWriteOptions, CsrWriter, H5adReader, OutputFile, OutputOptions, OutputSet,
};
use crate::ops::preprocess::normalize_chunk;
use crate::progress::Progress;
use crate::stream::{ChunkStream, StreamOptions};
use crate::workflow::preprocess::{about, Plate};

/// The obs column `run` labels each cell's plate with.
pub const LABEL: &str = "plate";

/// What pass 2 needs besides the plates.
pub(crate) struct MergePlan<'a> {
    /// The plates, opened (filter masks known).
    pub plates: &'a [Plate],
    /// Each plate's label (its file stem).
    pub keys: &'a [String],
    /// Each plate's `normalize_total` target.
    pub target_sums: &'a [f32],
    /// Every gene's name (the plates' var index).
    pub genes: &'a [String],
    /// The selection, a mask over `genes`.
    pub selected: &'a [bool],
    /// Stored values of the plates' kept cells over all genes: a bound on what `merged.h5ad`
    /// holds, which picks X's indptr width up front.
    pub kept_nnz: u64,
}

/// What pass 2 read and wrote.
pub(crate) struct Merged {
    /// Cells written.
    pub n_obs: usize,
    /// Genes written.
    pub n_vars: usize,
    /// Stored values written.
    pub nnz: u64,
    /// Per plate: rows and stored values streamed.
    pub read: Vec<(u64, u64)>,
}

/// One plate's obs as `preprocess` would write it: its kept rows, categories pruned.
struct PlateObs {
    reader: crate::io::DataFrameReader,
    mask: Vec<bool>,
    remaps: Vec<CategoryRemap>,
    schema: DataFrame,
}

fn plate_obs(plate: &Plate, block: usize) -> Result<PlateObs> {
    let file = H5adReader::open(&plate.path)?;
    let reader = file.obs_reader()?;
    let mask = match &plate.mask {
        Some(m) => m.as_ref().clone(),
        None => vec![true; plate.n_obs],
    };
    let remaps = used_categories(&reader, RowPick::Mask(&mask), block)?;
    let mut schema = reader.read_rows(0..0)?;
    apply_remaps(&mut schema, &remaps);
    Ok(PlateObs {
        reader,
        mask,
        remaps,
        schema,
    })
}

/// The joined obs columns (those every plate has, in the first plate's order) and their kinds.
fn plan_obs(obs: &[PlateObs]) -> Result<(Vec<String>, Vec<Target>)> {
    let mut names: Vec<String> = obs[0]
        .schema
        .columns
        .iter()
        .map(|c| c.name.clone())
        .collect();
    names.retain(|n| obs.iter().all(|o| o.schema.column(n).is_some()));
    if names.iter().any(|n| n == LABEL) {
        return Err(Error::InvalidArgument(format!(
            "the plates' obs already has a column named {LABEL:?}, the label `run` adds"
        )));
    }
    let targets = names
        .iter()
        .map(|n| {
            let samples: Vec<Option<ColumnValues>> =
                obs.iter().map(|o| o.schema.column(n).cloned()).collect();
            plan_column(n, &samples)
        })
        .collect::<Result<_>>()?;
    Ok((names, targets))
}

/// Writes every plate's kept obs rows, joined, as `root/obs`.
fn write_obs(obs: &[PlateObs], keys: &[String], root: &hdf5::Group, block: usize) -> Result<()> {
    let (names, targets) = plan_obs(obs)?;
    let key_cats = Categories::Strings(keys.to_vec());
    let mut writer: Option<DataFrameWriter> = None;
    for (fi, o) in obs.iter().enumerate() {
        let n = o.reader.len();
        for start in (0..n).step_by(block) {
            let end = (start + block).min(n);
            let rows = RowPick::Mask(&o.mask).rows_in(start, end);
            if rows.is_empty() {
                continue;
            }
            let mut b = o.reader.read_rows(start..end)?.take(&rows);
            apply_remaps(&mut b, &o.remaps);
            let len = b.index.len();
            let mut columns: Vec<Column> = names
                .iter()
                .zip(&targets)
                .map(|(name, t)| Column {
                    name: name.clone(),
                    values: convert(t, b.column(name), len),
                })
                .collect();
            columns.push(Column {
                name: LABEL.into(),
                values: ColumnValues::Categorical {
                    codes: vec![fi as i32; len],
                    categories: key_cats.clone(),
                    ordered: false,
                },
            });
            let out = DataFrame {
                index_name: "_index".into(),
                index: b.index,
                columns,
            };
            if writer.is_none() {
                writer = Some(DataFrameWriter::create(root, "obs", &out)?);
            }
            writer.as_mut().expect("created").append(&out)?;
        }
    }
    if writer.is_none() {
        return Err(Error::InvalidArgument(
            "no cells to merge (every cell was filtered out)".into(),
        ));
    }
    Ok(())
}

/// Runs pass 2: writes `merged` and the accumulated gram (`gram_path`), committed together.
pub(crate) fn merge(
    plan: &MergePlan<'_>,
    merged: &Path,
    gram_path: &Path,
    compression: crate::io::Codec,
    stream: StreamOptions,
    backend: &dyn Backend,
    quiet: bool,
) -> Result<Merged> {
    let block = stream.chunk_rows.max(1);
    let subset = GeneSubset::from_mask(plan.selected);
    let n_sel = subset.n_new();
    let names: Vec<String> = plan
        .genes
        .iter()
        .zip(plan.selected)
        .filter(|(_, &s)| s)
        .map(|(g, _)| g.clone())
        .collect();

    let inputs = plan.plates.iter().map(|p| p.path.as_path());
    let set = OutputSet::create(
        &[merged, gram_path],
        &OutputOptions::new(true).inputs(inputs),
    )?;
    let out = OutputFile::create_in(&set, merged)?;
    let obs = plan
        .plates
        .iter()
        .map(|p| plate_obs(p, block))
        .collect::<Result<Vec<_>>>()?;
    write_obs(&obs, plan.keys, out.root(), block)?;
    drop(obs);
    DataFrame::with_index(names).write(out.root(), "var")?;

    let total: u64 = plan
        .plates
        .iter()
        .map(|p| p.selection.count(p.n_obs) as u64)
        .sum();
    let progress = Progress::new("merge", total, quiet);
    let xw = CsrWriter::create(
        out.root(),
        "X",
        n_sel,
        CsrWriteOptions {
            compression,
            nnz_hint: Some(plan.kept_nnz),
        },
    )?;
    let mut read = vec![(0u64, 0u64); plan.plates.len()];
    // Normalize and accumulate on this thread while a writer thread appends the previous chunk.
    let (tx, rx) = crossbeam_channel::bounded::<CsrChunk>(1);
    let (gram, xw) = std::thread::scope(|scope| -> Result<(Gram, CsrWriter)> {
        let writer = scope.spawn(move || -> Result<CsrWriter> {
            let mut xw = xw;
            for chunk in rx {
                xw.append(&chunk)?;
            }
            Ok(xw)
        });
        let produced = (|| -> Result<Gram> {
            let mut acc = backend.gram_accumulator(n_sel)?;
            for (i, plate) in plan.plates.iter().enumerate() {
                let chunks = ChunkStream::open(&plate.path, plate.selection.clone(), stream)?;
                for chunk in chunks {
                    let chunk = chunk.map_err(|e| about(&plate.path, "/X", e))?;
                    read[i].0 += chunk.n_rows() as u64;
                    read[i].1 += chunk.nnz() as u64;
                    let normalized = normalize_chunk(backend, &chunk, plan.target_sums[i], &subset)
                        .map_err(|e| about(&plate.path, "/X", e))?;
                    acc.add(&normalized)?;
                    progress.inc(chunk.n_rows() as u64);
                    if tx.send(normalized).is_err() {
                        break; // the writer failed; its error is reported below
                    }
                }
            }
            acc.finish()
        })();
        drop(tx);
        let xw = writer.join().expect("writer thread panicked")?;
        Ok((produced?, xw))
    })?;
    progress.finish();
    let (n_obs, nnz) = xw.finish()?;
    super::gram_file::save(set.staged(gram_path), &gram)?;
    out.close()?;
    set.commit()?;
    Ok(Merged {
        n_obs,
        n_vars: n_sel,
        nnz,
        read,
    })
}

/// `DIR/merged.h5ad` and `DIR/gram.bin`.
pub(crate) fn outputs(dir: &Path) -> (PathBuf, PathBuf) {
    (dir.join("merged.h5ad"), dir.join("gram.bin"))
}
