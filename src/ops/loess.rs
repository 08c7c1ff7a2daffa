//! LOESS (placeholder; being written).

/// Placeholder error.
#[derive(Debug, thiserror::Error)]
#[error("loess not yet implemented")]
pub struct LoessError;

/// Placeholder.
pub fn loess_fitted(_x: &[f64], _y: &[f64], _span: f64, _degree: usize) -> Result<Vec<f64>, LoessError> {
    Err(LoessError)
}
