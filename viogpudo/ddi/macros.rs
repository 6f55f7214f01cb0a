//! Declaration macros for the ABI mirrors. Each macro both declares the Rust items and records
//! them in a registry constant, so nothing can be mirrored without also being checked by the
//! layout test against the WDK facts.

/// Declares `#[repr(C)]` structs/unions and a `const $list: &[TypeLayout]` recording them.
///
/// Per item: fields may carry `=> "C path"` when the Rust name differs from the C member path
/// (anonymous unions); `nested { "C.path" => rust.path }` records deeper members;
/// `bits { "C path" => getter, setter: Type = MASK in storage_field }` (Type: `bool`, `u32` or a C enum newtype) declares bitfield
/// accessors over an integer storage field; `in "PARENT" at "Path"` marks a type that C declares
/// anonymously (or that the facts list only inside its parent).
macro_rules! ddi_types {
    (
        const $list:ident;
        $(
            $(#[$meta:meta])*
            pub $kw:tt $name:ident $(in $parent:literal at $ppath:literal)? {
                $(
                    $(#[$fmeta:meta])*
                    pub $field:ident : $fty:ty $(=> $cpath:literal)?
                ),* $(,)?
            }
            $(nested { $( $npath:literal => $($nseg:ident).+ ),* $(,)? })?
            $(bits { $( $bpath:literal => $bget:ident, $bset:ident : $bty:ty = $bmask:literal in $bstore:ident ),* $(,)? })?
        )*
    ) => {
        $(
            $(#[$meta])*
            #[repr(C)]
            #[derive(Clone, Copy, Debug)]
            pub $kw $name {
                $(
                    $(#[$fmeta])*
                    #[doc = concat!("\n\nC member `", ddi_path!($field $($cpath)?), "`.")]
                    pub $field: $fty,
                )*
            }

            impl $crate::ddi::registry::DdiLayout for $name {
                const LAYOUT: $crate::ddi::registry::TypeLayout = $crate::ddi::registry::TypeLayout {
                    name: stringify!($name),
                    kind: ddi_kind!($($parent $ppath)?),
                    size: core::mem::size_of::<$name>(),
                    align: core::mem::align_of::<$name>(),
                    fields: &[
                        $(
                            $crate::ddi::registry::FieldLayout {
                                path: ddi_path!($field $($cpath)?),
                                offset: core::mem::offset_of!($name, $field),
                                size: Some(core::mem::size_of::<$fty>()),
                                ty: stringify!($fty),
                            },
                        )*
                        $($(
                            $crate::ddi::registry::FieldLayout {
                                path: $npath,
                                offset: core::mem::offset_of!($name, $($nseg).+),
                                size: None,
                                ty: "",
                            },
                        )*)?
                    ],
                    bits: &[
                        $($(
                            $crate::ddi::registry::BitLayout {
                                path: $bpath,
                                offset: core::mem::offset_of!($name, $bstore),
                                mask: $bmask,
                            },
                        )*)?
                    ],
                };
            }

            // Every field type must itself be zero-valid for the impl below to hold.
            const _: () = {
                #[allow(dead_code)]
                fn fields_are_zero_valid()
                where
                    $($fty: $crate::ddi::registry::ZeroValid,)*
                {
                }
            };

            // SAFETY: every field type is `ZeroValid` (checked just above), and a struct or
            // union of zero-valid fields with zeroed padding is itself a valid value.
            unsafe impl $crate::ddi::registry::ZeroValid for $name {}

            impl Default for $name {
                /// All fields zero: null pointers, `None` callbacks, zero integers.
                fn default() -> Self {
                    $crate::ddi::registry::zeroed()
                }
            }

            impl $name {
                $($(
                    #[doc = concat!("Reads the C bitfield `", $bpath, "`.")]
                    #[inline]
                    pub fn $bget(&self) -> $bty {
                        <$bty as $crate::ddi::registry::BitValue>::from_bits(
                            $crate::ddi::registry::read_bits(self.$bstore, $bmask),
                        )
                    }

                    #[doc = concat!(
                        "Writes the C bitfield `", $bpath,
                        "`; every other bit of the storage word keeps its value."
                    )]
                    #[inline]
                    pub fn $bset(&mut self, value: $bty) {
                        $crate::ddi::registry::write_bits(
                            &mut self.$bstore,
                            $bmask,
                            $crate::ddi::registry::BitValue::to_bits(value),
                        );
                    }
                )*)?
            }
        )*

        /// Layout records of the structs and unions declared in this module.
        pub(crate) const $list: &[$crate::ddi::registry::TypeLayout] = &[
            $(<$name as $crate::ddi::registry::DdiLayout>::LAYOUT,)*
        ];
    };
}

/// The C member path of a field: its override if given, else its Rust name.
macro_rules! ddi_path {
    ($field:ident) => {
        stringify!($field)
    };
    ($field:ident $cpath:literal) => {
        $cpath
    };
}

/// The [`TypeKind`](crate::ddi::registry::TypeKind) of a declared type.
macro_rules! ddi_kind {
    () => {
        $crate::ddi::registry::TypeKind::Named
    };
    ($parent:literal $path:literal) => {
        $crate::ddi::registry::TypeKind::Embedded {
            parent: $parent,
            path: $path,
        }
    };
}

/// Declares C enum types as transparent `i32` newtypes (any value the OS sends is
/// representable) and C scalar typedefs as aliases, and records both in `const $list`.
macro_rules! ddi_scalars {
    (
        const $list:ident;
        $(enum { $( $(#[$emeta:meta])* $ename:ident ),* $(,)? })?
        $(alias { $( $(#[$ameta:meta])* $aname:ident = $aty:ty ),* $(,)? })?
        $(opaque { $( $(#[$ometa:meta])* $oname:ident ),* $(,)? })?
    ) => {
        $($(
            $(#[$emeta])*
            #[repr(transparent)]
            #[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
            pub struct $ename(pub i32);

            // SAFETY: a transparent wrapper of `i32`; zero is a valid `i32`.
            unsafe impl $crate::ddi::registry::ZeroValid for $ename {}

            impl $crate::ddi::registry::BitValue for $ename {
                #[inline]
                fn from_bits(bits: u64) -> Self {
                    // Enum bitfields are at most 32 bits wide.
                    $ename(bits as i32)
                }
                #[inline]
                fn to_bits(self) -> u64 {
                    // Reinterpret, then zero-extend: the mask keeps only the field's bits.
                    u64::from(self.0 as u32)
                }
            }
        )*)?
        $($(
            $(#[$ameta])*
            pub type $aname = $aty;
        )*)?
        $($(
            $(#[$ometa])*
            ///
            /// Opaque: the driver only passes pointers to it through.
            #[repr(C)]
            pub struct $oname {
                _private: [u8; 0],
                _not_send_sync_unpin: core::marker::PhantomData<(*mut u8, core::marker::PhantomPinned)>,
            }
        )*)?

        /// Layout records of the scalar, enum and opaque types declared in this module.
        pub(crate) const $list: &[$crate::ddi::registry::TypeLayout] = &[
            $($(
                $crate::ddi::registry::TypeLayout::alias(
                    stringify!($ename),
                    core::mem::size_of::<$ename>(),
                    core::mem::align_of::<$ename>(),
                ),
            )*)?
            $($(
                $crate::ddi::registry::TypeLayout::alias(
                    stringify!($aname),
                    core::mem::size_of::<$aname>(),
                    core::mem::align_of::<$aname>(),
                ),
            )*)?
            $($(
                $crate::ddi::registry::TypeLayout {
                    name: stringify!($oname),
                    kind: $crate::ddi::registry::TypeKind::Opaque,
                    size: 0,
                    align: 1,
                    fields: &[],
                    bits: &[],
                },
            )*)?
        ];
    };
}

/// Declares function-pointer typedefs as `Option<unsafe extern "system" fn(..)>` and records
/// their signatures in `const $list`.
macro_rules! ddi_fns {
    (
        const $list:ident;
        $(
            $(#[$meta:meta])*
            $name:ident = fn($($pty:ty),* $(,)?) $(-> $ret:ty)?;
        )*
    ) => {
        $(
            $(#[$meta])*
            pub type $name = Option<unsafe extern "system" fn($($pty),*) $(-> $ret)?>;
        )*

        /// Signature records of the function-pointer typedefs declared in this module.
        pub(crate) const $list: &[$crate::ddi::registry::FnSignature] = &[
            $(
                $crate::ddi::registry::FnSignature {
                    name: stringify!($name),
                    ret: ddi_ret!($($ret)?),
                    params: &[
                        $(
                            $crate::ddi::registry::ParamLayout {
                                ty: stringify!($pty),
                                size: core::mem::size_of::<$pty>(),
                            },
                        )*
                    ],
                },
            )*
        ];
    };
}

/// The recorded return type of a function-pointer typedef (`void` when absent).
macro_rules! ddi_ret {
    () => {
        $crate::ddi::registry::ParamLayout { ty: "()", size: 0 }
    };
    ($ret:ty) => {
        $crate::ddi::registry::ParamLayout {
            ty: stringify!($ret),
            size: core::mem::size_of::<$ret>(),
        }
    };
}

/// Declares constants grouped by type (`Type(i32)` marks a C enum newtype) and records their
/// values in `const $list` (one slice per group).
macro_rules! ddi_consts {
    (
        const $list:ident;
        $(
            $(#[$gmeta:meta])*
            $ty:ident $( ( $inner:ty ) )? {
                $( $(#[$cmeta:meta])* $name:ident = $value:expr ),* $(,)?
            }
        )*
    ) => {
        $(
            ddi_const_decls!($ty $(($inner))?; $( $(#[$cmeta])* $name = $value ),*);
        )*

        /// Values of the constants declared in this module, one slice per type.
        pub(crate) const $list: &[&[$crate::ddi::registry::ConstantValue]] = &[
            $( ddi_const_records!($ty $(($inner))?; $($name),*), )*
        ];
    };
}

/// The constant items of one `ddi_consts!` group.
macro_rules! ddi_const_decls {
    ($ty:ident ($inner:ty); $( $(#[$cmeta:meta])* $name:ident = $value:expr ),*) => {
        $(
            $(#[$cmeta])*
            #[doc = concat!("`", stringify!($name), "` (", stringify!($ty), ").")]
            pub const $name: $ty = $ty($value);
        )*
    };
    ($ty:ident; $( $(#[$cmeta:meta])* $name:ident = $value:expr ),*) => {
        $(
            $(#[$cmeta])*
            #[doc = concat!("`", stringify!($name), "` (", stringify!($ty), ").")]
            pub const $name: $ty = $value;
        )*
    };
}

/// The value records of one `ddi_consts!` group, widened as the facts give them.
macro_rules! ddi_const_records {
    ($ty:ident ($inner:ty); $($name:ident),*) => {
        &[$(
            $crate::ddi::registry::ConstantValue {
                name: stringify!($name),
                value: $name.0 as i64,
            },
        )*]
    };
    ($ty:ident; $($name:ident),*) => {
        &[$(
            $crate::ddi::registry::ConstantValue {
                name: stringify!($name),
                value: $name as i64,
            },
        )*]
    };
}
