//! Values that pack fields of a few bits each into one integer: controller registers
//! and Feature values. [`packed!`] declares the struct of the fields with its `parse` and
//! `emit`.

/// A field of a packed value: a small integer or a flag.
pub trait BitField: Copy {
    /// The field from its bits (already cut to the field's width).
    fn from_bits(v: u64) -> Self;
    /// The field's bits.
    fn to_bits(self) -> u64;
}

impl BitField for bool {
    fn from_bits(v: u64) -> bool {
        v != 0
    }

    fn to_bits(self) -> u64 {
        self.into()
    }
}

macro_rules! bit_field_int {
    ($($t:ty),*) => {$(
        impl BitField for $t {
            fn from_bits(v: u64) -> $t {
                v as $t
            }

            fn to_bits(self) -> u64 {
                self.into()
            }
        }
    )*};
}

bit_field_int!(u8, u16, u32);

/// `width` bits of `v` from bit `at`.
pub fn bits(v: u64, at: u32, width: u32) -> u64 {
    (v >> at) & ((1u64 << width) - 1)
}

/// `v` (its low `width` bits) placed at bit `at`.
pub fn put(v: u64, at: u32, width: u32) -> u64 {
    (v & ((1u64 << width) - 1)) << at
}

/// Declares a struct of the fields packed in a `$raw` value (`u32` or `u64`), each written
/// `pub name: type => first bit, width;` (type `u8`, `u16`, `u32` or `bool`), with
/// `parse`, which ignores the bits outside the fields, and `emit`, which cuts each field
/// to its width and leaves the other bits zero.
macro_rules! packed {
    (
        $(#[$m:meta])*
        pub struct $name:ident: $raw:ty {
            $( $(#[$fm:meta])* pub $f:ident: $ty:ty => $at:literal, $width:literal; )*
        }
    ) => {
        $(#[$m])*
        pub struct $name {
            $( $(#[$fm])* pub $f: $ty, )*
        }

        impl $name {
            /// The fields of a value (the bits outside them are ignored).
            pub fn parse(v: $raw) -> $name {
                let v = u64::from(v);
                $name {
                    $( $f: $crate::wire::packed::BitField::from_bits(
                        $crate::wire::packed::bits(v, $at, $width),
                    ), )*
                }
            }

            /// The value: each field cut to its width, every other bit zero.
            pub fn emit(&self) -> $raw {
                let v = 0 $( | $crate::wire::packed::put(
                    $crate::wire::packed::BitField::to_bits(self.$f),
                    $at,
                    $width,
                ) )*;
                v as $raw
            }
        }
    };
}

pub(crate) use packed;
