//! Typed 1-D value vectors as HDF5 stores them (`NumVec`), and n-d dense arrays.

/// Element type of a numeric (or boolean) HDF5 dataset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NumDtype {
    /// HDF5 enum {FALSE, TRUE} over int8, as h5py writes numpy bools.
    Bool,
    /// int8
    I8,
    /// int16
    I16,
    /// int32
    I32,
    /// int64
    I64,
    /// uint8
    U8,
    /// uint16
    U16,
    /// uint32
    U32,
    /// uint64
    U64,
    /// float32
    F32,
    /// float64
    F64,
}

impl NumDtype {
    /// numpy's name for the dtype.
    pub fn name(self) -> &'static str {
        match self {
            NumDtype::Bool => "bool",
            NumDtype::I8 => "int8",
            NumDtype::I16 => "int16",
            NumDtype::I32 => "int32",
            NumDtype::I64 => "int64",
            NumDtype::U8 => "uint8",
            NumDtype::U16 => "uint16",
            NumDtype::U32 => "uint32",
            NumDtype::U64 => "uint64",
            NumDtype::F32 => "float32",
            NumDtype::F64 => "float64",
        }
    }

    /// True for integer dtypes (signed or unsigned).
    pub fn is_integer(self) -> bool {
        !matches!(self, NumDtype::Bool | NumDtype::F32 | NumDtype::F64)
    }
}

/// A 1-D vector of numbers or booleans in one of HDF5's element types.
#[derive(Clone, Debug, PartialEq)]
#[allow(missing_docs)]
pub enum NumVec {
    Bool(Vec<bool>),
    I8(Vec<i8>),
    I16(Vec<i16>),
    I32(Vec<i32>),
    I64(Vec<i64>),
    U8(Vec<u8>),
    U16(Vec<u16>),
    U32(Vec<u32>),
    U64(Vec<u64>),
    F32(Vec<f32>),
    F64(Vec<f64>),
}

/// Applies `$body` to the inner vector of a [`NumVec`], binding it to `$v`.
#[macro_export]
#[doc(hidden)]
macro_rules! with_numvec {
    ($nv:expr, $v:ident => $body:expr) => {
        match $nv {
            $crate::io::NumVec::Bool($v) => $body,
            $crate::io::NumVec::I8($v) => $body,
            $crate::io::NumVec::I16($v) => $body,
            $crate::io::NumVec::I32($v) => $body,
            $crate::io::NumVec::I64($v) => $body,
            $crate::io::NumVec::U8($v) => $body,
            $crate::io::NumVec::U16($v) => $body,
            $crate::io::NumVec::U32($v) => $body,
            $crate::io::NumVec::U64($v) => $body,
            $crate::io::NumVec::F32($v) => $body,
            $crate::io::NumVec::F64($v) => $body,
        }
    };
}

/// Runs `$body` with `$t` bound to the Rust type of a [`NumDtype`].
#[macro_export]
#[doc(hidden)]
macro_rules! with_num_type {
    ($dtype:expr, $t:ident => $body:expr) => {
        match $dtype {
            $crate::io::NumDtype::Bool => {
                type $t = bool;
                $body
            }
            $crate::io::NumDtype::I8 => {
                type $t = i8;
                $body
            }
            $crate::io::NumDtype::I16 => {
                type $t = i16;
                $body
            }
            $crate::io::NumDtype::I32 => {
                type $t = i32;
                $body
            }
            $crate::io::NumDtype::I64 => {
                type $t = i64;
                $body
            }
            $crate::io::NumDtype::U8 => {
                type $t = u8;
                $body
            }
            $crate::io::NumDtype::U16 => {
                type $t = u16;
                $body
            }
            $crate::io::NumDtype::U32 => {
                type $t = u32;
                $body
            }
            $crate::io::NumDtype::U64 => {
                type $t = u64;
                $body
            }
            $crate::io::NumDtype::F32 => {
                type $t = f32;
                $body
            }
            $crate::io::NumDtype::F64 => {
                type $t = f64;
                $body
            }
        }
    };
}

/// Maps each variant of a [`NumVec`] to the same variant, with `$body` computing the new vector.
macro_rules! map_numvec {
    ($nv:expr, $v:ident => $body:expr) => {
        match $nv {
            NumVec::Bool($v) => NumVec::Bool($body),
            NumVec::I8($v) => NumVec::I8($body),
            NumVec::I16($v) => NumVec::I16($body),
            NumVec::I32($v) => NumVec::I32($body),
            NumVec::I64($v) => NumVec::I64($body),
            NumVec::U8($v) => NumVec::U8($body),
            NumVec::U16($v) => NumVec::U16($body),
            NumVec::U32($v) => NumVec::U32($body),
            NumVec::U64($v) => NumVec::U64($body),
            NumVec::F32($v) => NumVec::F32($body),
            NumVec::F64($v) => NumVec::F64($body),
        }
    };
}

impl NumVec {
    /// An empty vector of `dtype`.
    pub fn empty(dtype: NumDtype) -> Self {
        match dtype {
            NumDtype::Bool => NumVec::Bool(Vec::new()),
            NumDtype::I8 => NumVec::I8(Vec::new()),
            NumDtype::I16 => NumVec::I16(Vec::new()),
            NumDtype::I32 => NumVec::I32(Vec::new()),
            NumDtype::I64 => NumVec::I64(Vec::new()),
            NumDtype::U8 => NumVec::U8(Vec::new()),
            NumDtype::U16 => NumVec::U16(Vec::new()),
            NumDtype::U32 => NumVec::U32(Vec::new()),
            NumDtype::U64 => NumVec::U64(Vec::new()),
            NumDtype::F32 => NumVec::F32(Vec::new()),
            NumDtype::F64 => NumVec::F64(Vec::new()),
        }
    }

    /// The element type.
    pub fn dtype(&self) -> NumDtype {
        match self {
            NumVec::Bool(_) => NumDtype::Bool,
            NumVec::I8(_) => NumDtype::I8,
            NumVec::I16(_) => NumDtype::I16,
            NumVec::I32(_) => NumDtype::I32,
            NumVec::I64(_) => NumDtype::I64,
            NumVec::U8(_) => NumDtype::U8,
            NumVec::U16(_) => NumDtype::U16,
            NumVec::U32(_) => NumDtype::U32,
            NumVec::U64(_) => NumDtype::U64,
            NumVec::F32(_) => NumDtype::F32,
            NumVec::F64(_) => NumDtype::F64,
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        with_numvec!(self, v => v.len())
    }

    /// True when there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The values as f64 (booleans as 0/1).
    pub fn to_f64(&self) -> Vec<f64> {
        match self {
            NumVec::Bool(v) => v.iter().map(|&b| b as u8 as f64).collect(),
            NumVec::I8(v) => v.iter().map(|&x| x as f64).collect(),
            NumVec::I16(v) => v.iter().map(|&x| x as f64).collect(),
            NumVec::I32(v) => v.iter().map(|&x| x as f64).collect(),
            NumVec::I64(v) => v.iter().map(|&x| x as f64).collect(),
            NumVec::U8(v) => v.iter().map(|&x| x as f64).collect(),
            NumVec::U16(v) => v.iter().map(|&x| x as f64).collect(),
            NumVec::U32(v) => v.iter().map(|&x| x as f64).collect(),
            NumVec::U64(v) => v.iter().map(|&x| x as f64).collect(),
            NumVec::F32(v) => v.iter().map(|&x| x as f64).collect(),
            NumVec::F64(v) => v.clone(),
        }
    }

    /// The values at `rows`, in that order.
    pub fn take(&self, rows: &[usize]) -> NumVec {
        map_numvec!(self, v => rows.iter().map(|&r| v[r]).collect())
    }

    /// Appends `other`, which must have the same dtype.
    ///
    /// # Panics
    /// When the dtypes differ (a caller bug: callers check dtypes first).
    pub fn extend_from(&mut self, other: &NumVec) {
        macro_rules! ext {
            ($($var:ident),*) => {
                match (self, other) {
                    $((NumVec::$var(a), NumVec::$var(b)) => a.extend_from_slice(b),)*
                    (a, b) => panic!("NumVec::extend_from: dtype {:?} vs {:?}", a.dtype(), b.dtype()),
                }
            };
        }
        ext!(Bool, I8, I16, I32, I64, U8, U16, U32, U64, F32, F64)
    }

    /// Formats element `i` for display.
    pub fn display(&self, i: usize) -> String {
        with_numvec!(self, v => format!("{}", v[i]))
    }
}

/// A dense n-dimensional numeric array in C order (obsm/varm entries, uns arrays).
#[derive(Clone, Debug, PartialEq)]
pub struct DenseArray {
    /// Extent of each dimension.
    pub shape: Vec<usize>,
    /// Values in C (row-major) order.
    pub data: NumVec,
}

impl DenseArray {
    /// A dense array, checking that `shape` matches the number of values.
    pub fn new(shape: Vec<usize>, data: NumVec) -> Self {
        assert_eq!(
            shape.iter().product::<usize>(),
            data.len(),
            "DenseArray shape does not match data length"
        );
        DenseArray { shape, data }
    }

    /// The rows `rows` of the array (along the first axis), in that order.
    pub fn take_rows(&self, rows: &[usize]) -> DenseArray {
        let width: usize = self.shape[1..].iter().product();
        let idx: Vec<usize> = rows
            .iter()
            .flat_map(|&r| (r * width)..(r * width + width))
            .collect();
        let mut shape = self.shape.clone();
        shape[0] = rows.len();
        DenseArray {
            shape,
            data: self.data.take(&idx),
        }
    }
}
