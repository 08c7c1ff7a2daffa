//! Pass 2 of `scoop run`: each plate's kept cells are normalized, log-transformed and subset to
//! the selected genes, and written straight into `DIR/merged.h5ad`, while the same chunks feed
//! the PCA gram.
//!
//! `merged.h5ad` holds what `scoop preprocess` then `scoop concat --label plate --keys STEMS`
//! would write: X one CSR over all plates (plates in input order, kept cells in file order), var
//! the selected genes' names only (concat keeps no var columns), obs each plate's kept rows
//! with unused categories dropped per plate (as `preprocess` writes them), joined as `concat`
//! joins them (columns every plate has, categories unified) plus the categorical `plate` label,
//! and the layers and `obsm` matrices every plate has, on the kept cells (and, for layers, the
//! selected genes), stacked as `concat` stacks `preprocess`'s ([`Carried`]); `raw` is left out.
//!
//! With `--keep-plates` the same rows also go to each plate's own file,
//! `DIR/plates/STEM_preprocessed.h5ad`, written by `scoop preprocess`'s [`PlateWriter`] and
//! committed with `merged.h5ad`.

use std::path::{Path, PathBuf};

use crate::backend::{Backend, GeneSubset, Gram};
use crate::error::{Error, Result};
use crate::io::carry::Carried;
use crate::io::concat::{convert, plan_column, Target};
use crate::io::dataframe::{Categories, Column, ColumnValues, DataFrame, DataFrameWriter};
use crate::io::subset::{apply_remaps, used_categories, CategoryRemap, RowPick};
use crate::io::{
    ColumnMap, CsrChunk, CsrWriteOptions, CsrWriter, H5adReader, OutputFile, OutputOptions,
    OutputSet,
};
use crate::ops::hvg::HvgTable;
use crate::ops::preprocess::normalize_chunk;
use crate::progress::Progress;
use crate::stream::{ChunkStream, StreamOptions};
use crate::workflow::preprocess::{about, Plate, PlateTable, PlateWriter};

/// The obs column `run` labels each cell's plate with.
pub const LABEL: &str = "plate";

/// The folder of `DIR` the plate files of `--keep-plates` go to, named as `scoop preprocess`
/// names them ([`crate::workflow::preprocess::output_path`]).
pub const PLATES_DIR: &str = "plates";

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
    /// With `--keep-plates`: each plate's `scoop preprocess` file, written from the same rows.
    pub plate_files: Option<PlateFiles<'a>>,
    /// The layers and obsm carried from the plates ([`carried`]).
    pub carried: &'a Carried,
    /// Files whose X is an external link to `merged.h5ad` (`pca.h5ad`): removed just before a
    /// new `merged.h5ad` is committed, so that no file is left whose X is not the one it was
    /// computed from (the steps that wrote them run again).
    pub linked: &'a [PathBuf],
}

/// The plate files `--keep-plates` writes: per plate, in the plates' order.
pub(crate) struct PlateFiles<'a> {
    /// Where the file goes.
    pub paths: &'a [PathBuf],
    /// The plate's `highly_variable_genes` table (all genes).
    pub tables: &'a [HvgTable],
    /// Stored values of its kept cells over all genes.
    pub nnz: &'a [u64],
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
    /// Layers written (those every plate has).
    pub layers: Vec<String>,
    /// `obsm` entries written (those every plate has).
    pub obsm: Vec<String>,
    /// What the plates hold that `merged.h5ad` does not (as `concat` leaves it out).
    pub left_out: Vec<String>,
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

/// What the writer thread is given, in order.
enum Job {
    /// The plate file the following rows also go to (`--keep-plates`).
    Plate(Box<PlateWriter>),
    /// The next rows: appended to the merged X (when written) and to the current plate file.
    Rows(CsrChunk),
}

/// Appends `jobs` to `merged` and the plate files, finishing each plate file when the next one
/// starts; returns the merged writer and the last plate file (finished by the caller once every
/// row was produced).
fn write_jobs(
    jobs: crossbeam_channel::Receiver<Job>,
    mut merged: Option<CsrWriter>,
) -> Result<(Option<CsrWriter>, Option<PlateWriter>)> {
    let mut plate: Option<PlateWriter> = None;
    for job in jobs {
        match job {
            Job::Plate(next) => {
                if let Some(done) = plate.replace(*next) {
                    done.finish()?;
                }
            }
            Job::Rows(rows) => {
                if let Some(x) = merged.as_mut() {
                    x.append(&rows)?;
                }
                if let Some(p) = plate.as_mut() {
                    p.append(&rows)?;
                }
            }
        }
    }
    Ok((merged, plate))
}

/// The selected genes' indices.
fn kept(selected: &[bool]) -> Vec<usize> {
    (0..selected.len()).filter(|&j| selected[j]).collect()
}

/// Starts plate `i`'s file in `set` when `plan` keeps plate files.
fn plate_writer(
    plan: &MergePlan<'_>,
    set: &OutputSet,
    i: usize,
    keep: &[usize],
    compression: crate::io::Codec,
    block: usize,
) -> Result<Option<Job>> {
    let Some(files) = &plan.plate_files else {
        return Ok(None);
    };
    let pw = PlateWriter::create(
        set,
        &plan.plates[i],
        &files.paths[i],
        &PlateTable {
            hvg: &files.tables[i],
            nnz: files.nnz[i],
        },
        keep,
        compression,
        block,
    )?;
    Ok(Some(Job::Plate(Box::new(pw))))
}

/// The plates, opened.
fn open_all(plates: &[Plate]) -> Result<Vec<H5adReader>> {
    plates.iter().map(|p| H5adReader::open(&p.path)).collect()
}

/// The layers and obsm `merged.h5ad` carries from `plates` (as `concat` carries them from
/// `preprocess`'s plate files), checked against each plate's X. `run` plans them before pass 1,
/// so that a bad entry fails before any pass, and hands the plan to [`merge`] in
/// [`MergePlan::carried`].
pub(crate) fn carried(plates: &[Plate], n_genes: usize) -> Result<Carried> {
    let x_shapes: Vec<(usize, usize)> = plates.iter().map(|p| (p.n_obs, n_genes)).collect();
    Carried::plan(&open_all(plates)?, &x_shapes, true)
}

/// Runs pass 2: writes `merged`, the accumulated gram (`gram_path`) and, with
/// [`MergePlan::plate_files`], each plate's file, committed together.
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
    let keep = kept(plan.selected);
    let names: Vec<String> = keep.iter().map(|&j| plan.genes[j].clone()).collect();

    let carried = plan.carried;

    let inputs = plan.plates.iter().map(|p| p.path.as_path());
    let mut targets = vec![merged, gram_path];
    if let Some(files) = &plan.plate_files {
        targets.extend(files.paths.iter().map(PathBuf::as_path));
    }
    let set = OutputSet::create(
        &targets,
        &OutputOptions::new(true).inputs(inputs).make_dirs(),
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
    let (tx, rx) = crossbeam_channel::bounded::<Job>(1);
    let (gram, xw, last) = std::thread::scope(|scope| {
        let writer = scope.spawn(move || write_jobs(rx, Some(xw)));
        let produced = (|| -> Result<Gram> {
            let mut acc = backend.gram_accumulator(n_sel)?;
            'plates: for (i, plate) in plan.plates.iter().enumerate() {
                if let Some(job) = plate_writer(plan, &set, i, &keep, compression, block)? {
                    if tx.send(job).is_err() {
                        break 'plates;
                    }
                }
                let chunks = ChunkStream::open(&plate.path, plate.selection.clone(), stream)?;
                for chunk in chunks {
                    let chunk = chunk.map_err(|e| about(&plate.path, "/X", e))?;
                    read[i].0 += chunk.n_rows() as u64;
                    read[i].1 += chunk.nnz() as u64;
                    let normalized = normalize_chunk(backend, &chunk, plan.target_sums[i], &subset)
                        .map_err(|e| about(&plate.path, "/X", e))?;
                    acc.add(&normalized)?;
                    progress.inc(chunk.n_rows() as u64);
                    if tx.send(Job::Rows(normalized)).is_err() {
                        break 'plates; // the writer failed; its error is reported below
                    }
                }
            }
            acc.finish()
        })();
        drop(tx);
        let (xw, last) = writer.join().expect("writer thread panicked")?;
        Ok::<_, Error>((produced?, xw.expect("the merged writer comes back"), last))
    })?;
    progress.finish();
    if let Some(p) = last {
        p.finish()?;
    }
    let (n_obs, nnz) = xw.finish()?;
    let picks: Vec<Option<RowPick<'_>>> = plan
        .plates
        .iter()
        .map(|p| p.mask.as_deref().map(|m| RowPick::Mask(m)))
        .collect();
    let genes = vec![ColumnMap::select(plan.genes.len(), &keep); plan.plates.len()];
    carried.write(
        &open_all(plan.plates)?,
        &picks,
        &genes,
        &out,
        block,
        compression,
    )?;
    super::gram_file::save(set.staged(gram_path), &gram)?;
    out.close()?;
    for path in plan.linked {
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(Error::io(path, e)),
            _ => {}
        }
    }
    set.commit()?;
    Ok(Merged {
        n_obs,
        n_vars: n_sel,
        nnz,
        read,
        layers: carried.layers.clone(),
        obsm: carried.obsm_keys(),
        left_out: carried.left_out.clone(),
    })
}

/// Writes only the plate files of `plan` (which must keep them), their X rows copied from
/// `merged`, the merged file of the same plates and genes (plate `i`'s kept cells are its rows
/// after those of the plates before it). The raw plates' X is not read; their annotations are.
/// Returns the rows copied.
pub(crate) fn plates_from_merged(
    plan: &MergePlan<'_>,
    merged: &Path,
    compression: crate::io::Codec,
    block: usize,
    quiet: bool,
) -> Result<u64> {
    let block = block.max(1);
    let files = plan
        .plate_files
        .as_ref()
        .expect("plates_from_merged writes plate files");
    let keep = kept(plan.selected);
    let counts: Vec<usize> = plan
        .plates
        .iter()
        .map(|p| p.selection.count(p.n_obs))
        .collect();
    let total: usize = counts.iter().sum();
    let f = H5adReader::open(merged)?;
    let x = f.x()?;
    if x.shape() != (total, keep.len()) {
        return Err(Error::format(
            merged,
            "/X",
            format!(
                "shape {:?}, but the plates' kept cells and the selected genes make {:?}; \
                 remove run.json to start the run afresh",
                x.shape(),
                (total, keep.len())
            ),
        ));
    }
    let inputs = plan.plates.iter().map(|p| p.path.as_path()).chain([merged]);
    let set = OutputSet::create(
        files.paths,
        &OutputOptions::new(true).inputs(inputs).make_dirs(),
    )?;
    let progress = Progress::new("plates", total as u64, quiet);
    let (tx, rx) = crossbeam_channel::bounded::<Job>(1);
    let last = std::thread::scope(|scope| {
        let writer = scope.spawn(move || write_jobs(rx, None));
        let produced = (|| -> Result<()> {
            let mut start = 0;
            'plates: for (i, &n) in counts.iter().enumerate() {
                let job = plate_writer(plan, &set, i, &keep, compression, block)?;
                if tx.send(job.expect("plate files kept")).is_err() {
                    break 'plates;
                }
                for from in (start..start + n).step_by(block) {
                    let to = (from + block).min(start + n);
                    let rows = x.read_rows(from..to)?;
                    progress.inc((to - from) as u64);
                    if tx.send(Job::Rows(rows)).is_err() {
                        break 'plates; // the writer failed; its error is reported below
                    }
                }
                start += n;
            }
            Ok(())
        })();
        drop(tx);
        let (_, last) = writer.join().expect("writer thread panicked")?;
        produced.map(|()| last)
    })?;
    progress.finish();
    if let Some(p) = last {
        p.finish()?;
    }
    set.commit()?;
    Ok(total as u64)
}

/// `DIR/merged.h5ad` and `DIR/gram.bin`.
pub(crate) fn outputs(dir: &Path) -> (PathBuf, PathBuf) {
    (dir.join("merged.h5ad"), dir.join("gram.bin"))
}
