//! The self-description of the mirrored DXGK ABI: every mirrored type, field, bitfield,
//! function-pointer signature and constant is recorded here as it is declared, so that a test
//! can hold each one against the sizes, offsets and values taken from the WDK headers.
//!
//! It also owns the two small helpers every mirror shares: all-zero construction
//! ([`ZeroValid`], [`zeroed`]) and bitfield access that touches only the field's own bits
//! ([`read_bits`], [`write_bits`]).

/// How a mirrored type relates to the C declarations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TypeKind {
    /// A C struct or union typedef of the same name; its size and fields are in the facts.
    Named,
    /// A C member with no typedef of its own (an anonymous struct/union, or a flags struct
    /// that the facts list only inside its parent): its fields are checked at
    /// `parent` + `path`. A `path` starting with `(anon` is transparent, as in C.
    Embedded {
        /// C name of the enclosing typedef.
        parent: &'static str,
        /// C member path of this object inside `parent`.
        path: &'static str,
    },
    /// A scalar typedef or C enum (`NTSTATUS`, `HANDLE`, `D3DDDIFORMAT`, ...).
    Alias,
    /// An OS object the driver only ever holds by pointer; deliberately has no layout.
    Opaque,
}

/// One field (or nested member path) of a mirrored type.
#[derive(Clone, Copy, Debug)]
pub struct FieldLayout {
    /// C member path relative to the type, e.g. `Format.Graphics.PrimSurfSize.cx`.
    pub path: &'static str,
    /// Byte offset from the start of the type.
    pub offset: usize,
    /// `size_of` the Rust field type (top-level fields only).
    pub size: Option<usize>,
    /// The Rust field type as written (top-level fields only).
    pub ty: &'static str,
}

/// One bitfield accessor of a mirrored type.
#[derive(Clone, Copy, Debug)]
pub struct BitLayout {
    /// C member path of the bitfield relative to the type.
    pub path: &'static str,
    /// Byte offset of the storage word the accessor reads and writes.
    pub offset: usize,
    /// The bits of the storage word that belong to the field.
    pub mask: u64,
}

/// The recorded layout of one mirrored type.
#[derive(Clone, Copy, Debug)]
pub struct TypeLayout {
    /// Rust name (equal to the C typedef name for named types).
    pub name: &'static str,
    /// How the type maps to C.
    pub kind: TypeKind,
    /// `size_of` the Rust type.
    pub size: usize,
    /// `align_of` the Rust type.
    pub align: usize,
    /// Fields and nested member paths.
    pub fields: &'static [FieldLayout],
    /// Bitfield accessors.
    pub bits: &'static [BitLayout],
}

impl TypeLayout {
    /// The record of a scalar typedef or enum.
    pub const fn alias(name: &'static str, size: usize, align: usize) -> Self {
        TypeLayout {
            name,
            kind: TypeKind::Alias,
            size,
            align,
            fields: &[],
            bits: &[],
        }
    }
}

/// One parameter or return type of a function-pointer typedef.
#[derive(Clone, Copy, Debug)]
pub struct ParamLayout {
    /// The Rust type as written.
    pub ty: &'static str,
    /// `size_of` the Rust type (0 for a `void` return).
    pub size: usize,
}

/// The recorded signature of one function-pointer typedef.
#[derive(Clone, Copy, Debug)]
pub struct FnSignature {
    /// The C typedef name, e.g. `PDXGKDDI_ADD_DEVICE`.
    pub name: &'static str,
    /// Return type (`()` with size 0 for `void`).
    pub ret: ParamLayout,
    /// Parameters in order.
    pub params: &'static [ParamLayout],
}

/// One mirrored constant and its value widened to `i64` (as the facts give it).
#[derive(Clone, Copy, Debug)]
pub struct ConstantValue {
    /// C name.
    pub name: &'static str,
    /// Value, sign-extended from its C type.
    pub value: i64,
}

/// Implemented by every mirrored struct and union: its recorded layout.
pub trait DdiLayout {
    /// The record of this type.
    const LAYOUT: TypeLayout;
}

/// Types for which the all-zero bit pattern is a valid value (integers, raw pointers,
/// `Option` of function pointers, and the mirrors built only from those).
///
/// # Safety
/// Implementors guarantee that `core::mem::zeroed::<Self>()` is a valid value.
pub unsafe trait ZeroValid: Sized {}

macro_rules! zero_valid_scalars {
    ($($t:ty),*) => {$(
        // SAFETY: zero is a valid value of every integer type.
        unsafe impl ZeroValid for $t {}
    )*};
}
zero_valid_scalars!(u8, u16, u32, u64, usize, i8, i16, i32, i64, isize);

// SAFETY: the null pointer is a valid raw pointer value.
unsafe impl<T> ZeroValid for *const T {}
// SAFETY: the null pointer is a valid raw pointer value.
unsafe impl<T> ZeroValid for *mut T {}
// SAFETY: an array of zero-valid elements is zero-valid element by element.
unsafe impl<T: ZeroValid, const N: usize> ZeroValid for [T; N] {}

macro_rules! zero_valid_fn_ptrs {
    ($( ($($arg:ident),*) )*) => {$(
        // SAFETY: `Option<fn>` has the null-pointer niche: all-zero is `None`.
        unsafe impl<R, $($arg),*> ZeroValid for Option<unsafe extern "system" fn($($arg),*) -> R> {}
    )*};
}
zero_valid_fn_ptrs! {
    () (A) (A, B) (A, B, C) (A, B, C, D) (A, B, C, D, E) (A, B, C, D, E, F)
    (A, B, C, D, E, F, G) (A, B, C, D, E, F, G, H) (A, B, C, D, E, F, G, H, I)
}

/// An all-zero value of `T`: null pointers, `None` callbacks, zero integers.
pub fn zeroed<T: ZeroValid>() -> T {
    // SAFETY: `T: ZeroValid` promises that the all-zero bit pattern is a valid `T`.
    unsafe { core::mem::zeroed() }
}

/// Integer storage units of C bitfields.
pub trait BitStorage: Copy {
    /// The unit as a `u64`.
    fn widen(self) -> u64;
    /// The low bits of `value` as a unit (the caller has masked them to fit).
    fn narrow(value: u64) -> Self;
}

macro_rules! bit_storage {
    ($($t:ty),*) => {$(
        impl BitStorage for $t {
            #[inline]
            fn widen(self) -> u64 {
                u64::from(self)
            }
            #[inline]
            fn narrow(value: u64) -> Self {
                // Truncation is the point: the value was masked to this unit's width.
                value as $t
            }
        }
    )*};
}
bit_storage!(u8, u16, u32, u64);

/// Values a bitfield accessor exchanges: `bool` for one-bit flags, `u32` for counts and
/// shifts, the enum newtypes for enum-typed bitfields.
pub trait BitValue: Copy {
    /// The value of the field bits (already shifted down to bit 0).
    fn from_bits(bits: u64) -> Self;
    /// The field bits of the value (before shifting into place).
    fn to_bits(self) -> u64;
}

impl BitValue for bool {
    #[inline]
    fn from_bits(bits: u64) -> Self {
        bits != 0
    }
    #[inline]
    fn to_bits(self) -> u64 {
        u64::from(self)
    }
}

impl BitValue for u32 {
    #[inline]
    fn from_bits(bits: u64) -> Self {
        // `u32` accessors sit on masks at most 32 bits wide.
        bits as u32
    }
    #[inline]
    fn to_bits(self) -> u64 {
        u64::from(self)
    }
}

/// The value of the bitfield `mask` in `word`, shifted down to bit 0.
#[inline]
pub fn read_bits<T: BitStorage>(word: T, mask: u64) -> u64 {
    (word.widen() & mask) >> mask.trailing_zeros()
}

/// Stores `value` into the bitfield `mask` of `word`; bits outside `mask` keep their value
/// and bits of `value` that do not fit the field are dropped.
#[inline]
pub fn write_bits<T: BitStorage>(word: &mut T, mask: u64, value: u64) {
    let shifted = value.checked_shl(mask.trailing_zeros()).unwrap_or(0) & mask;
    *word = T::narrow((word.widen() & !mask) | shifted);
}
