//! How each command's summary reads: one [`Display`] per summary, the facts the step itself
//! knows. The command line adds what only it knows (the wall time it measured around the step and
//! the backend's name) after them.

use std::fmt::{self, Display, Formatter};

use super::neighbors::NeighborsSummary;
use super::pca::PcaSummary;
use super::preprocess::{PlateReport, PreprocessSummary};
use super::subsample::SubsampleSummary;
use super::umap::UmapSummary;
use super::Matrices;
use crate::io::concat::ConcatSummary;
use crate::ops::umap::{Init, Placement};
use crate::sim::PlateSummary;

/// `rate` per second of `count` over `seconds`, for "(… cells/s)".
fn per_second(count: f64, seconds: f64) -> f64 {
    count / seconds.max(1e-9)
}

/// `left` then the items joined by ", " when there are any; nothing otherwise.
fn listed(f: &mut Formatter<'_>, left: &str, items: &[String]) -> fmt::Result {
    if items.is_empty() {
        return Ok(());
    }
    write!(f, "{left}{}", items.join(", "))
}

impl Display for Matrices {
    /// `X, raw, layers/counts written`, `left out (--drop-matrices): X`, or `no X, raw or layers
    /// in the input`.
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match (self.present.is_empty(), self.left_out_by) {
            (true, _) => f.write_str("no X, raw or layers in the input"),
            (false, None) => write!(f, "{} written", self.present.join(", ")),
            (false, Some(by)) => write!(f, "left out ({by}): {}", self.present.join(", ")),
        }
    }
}

impl Display for PlateSummary {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} cells, {} non-zeros ({:.0} per cell), {} pass_filter == full",
            self.path.display(),
            self.cells,
            self.nnz,
            self.nnz as f64 / self.cells.max(1) as f64,
            self.full
        )
    }
}

impl Display for ConcatSummary {
    /// The output, its shape and stored values, the layers written and what was left out.
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} cells x {} genes, {} non-zeros",
            self.path.display(),
            self.n_obs,
            self.n_vars,
            self.nnz
        )?;
        listed(f, "; layers: ", &self.layers)?;
        listed(f, "; left out, as concat_on_disk: ", &self.left_out)
    }
}

impl Display for PlateReport {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let st = &self.stats;
        let mut written = vec!["X".to_string()];
        written.extend(self.matrices.iter().cloned());
        write!(
            f,
            "{}: {} of {} cells kept, target sum {}, {} HVGs; stats {:.2} s, write {:.2} s \
             ({:.0} cells/s); {} written",
            self.input.display(),
            st.cells,
            self.cells_in,
            st.target_sum,
            st.hvg.n_highly_variable(),
            self.stats_seconds,
            self.write_seconds,
            per_second(st.cells as f64, self.stats_seconds + self.write_seconds),
            written.join(", "),
        )?;
        listed(f, "; not carried: ", &self.not_carried)?;
        write!(f, " -> {}", self.output.display())
    }
}

impl Display for PreprocessSummary {
    /// A line per plate, then the gene selection and the cells written.
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        for p in &self.plates {
            writeln!(f, "{p}")?;
        }
        let cells: u64 = self.plates.iter().map(|p| p.stats.cells).sum();
        write!(
            f,
            "{} of {} genes highly variable in >= {} plate(s) -> {}; {cells} cells",
            self.n_selected(),
            self.genes.len(),
            self.min_plates,
            self.genes_tsv.display(),
        )
    }
}

impl Display for PcaSummary {
    /// The fit and the first variance ratios, then the time of each pass.
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let fit = &self.fit;
        let top: Vec<String> = fit
            .variance_ratio
            .iter()
            .take(5)
            .map(|r| format!("{r:.4}"))
            .collect();
        write!(
            f,
            "{} cells x {} genes -> {} components ({:?} eigen solver",
            fit.n_rows, fit.dim, fit.k, fit.solver
        )?;
        if fit.iterations > 0 {
            write!(f, ", {} iterations", fit.iterations)?;
        }
        writeln!(f, "); variance ratio of the first: {}", top.join(", "))?;
        write!(
            f,
            "gram {:.2} s ({:.2e} pair-updates/s), eigen {:.2} s, projection + write {:.2} s \
             ({:.0} cells/s), matrix copy {:.2} s",
            self.gram_seconds,
            per_second(self.pair_updates as f64, self.gram_seconds),
            self.eigen_seconds,
            self.project_seconds,
            per_second(fit.n_rows as f64, self.project_seconds),
            self.copy_seconds,
        )
    }
}

impl PcaSummary {
    /// `X, raw written -> out.h5ad, X_pca.zarr`: what was written where.
    pub fn outputs(&self) -> String {
        let mut s = format!("{} -> {}", self.matrices, self.output.display());
        if let Some(z) = &self.zarr {
            s.push_str(&format!(", {}", z.display()));
        }
        s
    }
}

impl Display for SubsampleSummary {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} of {} cells ({} distinct), obsm: [{}]; {}; {:.2} s -> {}",
            self.n_output,
            self.n_input,
            self.n_distinct,
            self.obsm.join(", "),
            self.matrices,
            self.seconds,
            self.output.display()
        )
    }
}

impl Display for NeighborsSummary {
    /// The search, its checked recall (NN-descent) and the time of each part.
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} cells x {} dims of {}, {} neighbours ({:?}",
            self.n_cells,
            self.n_dims,
            self.representation.name(),
            self.n_neighbors,
            self.method
        )?;
        if let Some(d) = &self.descent {
            write!(f, " (heaps of {}", d.heap_neighbors)?;
            match d.grows {
                0 => {}
                1 => f.write_str(" after 1 growth")?,
                g => write!(f, " after {g} growths")?,
            }
            write!(
                f,
                ", {} rounds, intrinsic dimension {:.1}; recall@{} {:.3} on {} cells checked \
                 exactly)",
                d.rounds, d.intrinsic_dim, self.n_neighbors, d.recall, d.checked
            )?;
        }
        write!(
            f,
            "): knn {:.2} s ({:.0} cells/s), connectivities {:.2} s ({} stored), read {:.2} s \
             on {}; {} -> {}",
            self.knn_seconds,
            per_second(self.n_cells as f64, self.knn_seconds),
            self.fuzzy_seconds,
            self.nnz,
            self.read_seconds,
            self.backend,
            self.matrices,
            self.output.display()
        )
    }
}

/// How the layout started, as the summary names it.
struct Start<'a>(&'a UmapSummary);

impl Display for Start<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match &self.0.init {
            Init::Spectral {
                components,
                placement,
                worst,
                ..
            } => {
                write!(
                    f,
                    "spectral init ({components} component{}",
                    if *components == 1 { "" } else { "s" }
                )?;
                f.write_str(match placement {
                    Placement::Single => "",
                    Placement::UnitVectors => " placed at ±unit vectors",
                    Placement::Centroids => " placed by their centroids",
                    Placement::Random => " placed at random (no X_pca)",
                    Placement::Grid => " placed on a grid",
                })?;
                match worst {
                    // Components this small are solved densely, exactly.
                    Some(w) if w.products == 0 => f.write_str(", dense eigensolve")?,
                    Some(w) => write!(
                        f,
                        ", {} rounds, {} block products, residual {:.1e}",
                        w.rounds, w.products, w.residual
                    )?,
                    None => {}
                }
                f.write_str(")")
            }
            Init::Random(_) | Init::Uniform => f.write_str("random init"),
            Init::Given { jittered } => {
                write!(f, "init from obsm/{}", self.0.init_pos)?;
                if *jittered {
                    f.write_str(" (repeated rows jittered)")?;
                }
                Ok(())
            }
        }
    }
}

impl Display for UmapSummary {
    /// The graph, the start and the time of the initialization and the epochs.
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} cells, {} edges, {} epochs, a = {:.4}, b = {:.4}, {}: {:.2} s (init {:.2} s",
            self.n_cells,
            self.n_edges,
            self.n_epochs,
            self.a,
            self.b,
            Start(self),
            self.layout_seconds,
            self.phase_seconds.0,
        )?;
        if let Init::Spectral {
            worst: Some(_),
            product_seconds,
            ..
        } = &self.init
        {
            write!(f, " with graph products {product_seconds:.2} s")?;
        }
        write!(
            f,
            ", epochs {:.2} s; {:.0} cells/s) on {}; {} -> {}",
            self.phase_seconds.1,
            per_second(self.n_cells as f64, self.layout_seconds),
            self.backend,
            self.matrices,
            self.output.display()
        )
    }
}
