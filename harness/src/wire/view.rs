//! The part every view shares: a buffer, its length check and the way out of it.

/// Declares a view `$name<T: AsRef<[u8]>>` over a structure of `$len` bytes (`$what` names
/// it in a `Truncated` error), with `new_unchecked`, `new_checked`, `check_len` and
/// `into_inner`; the file that declares it adds the field getters and setters (most of
/// them with [`accessors!`]).
macro_rules! view {
    ($(#[$m:meta])* $name:ident, $len:expr, $what:literal) => {
        $(#[$m])*
        #[derive(Debug, Clone)]
        pub struct $name<T: AsRef<[u8]>> {
            buffer: T,
        }

        impl<T: AsRef<[u8]>> $name<T> {
            /// Wraps a buffer without checking its length; getters panic on a short buffer.
            pub const fn new_unchecked(buffer: T) -> $name<T> {
                $name { buffer }
            }

            /// Wraps a buffer long enough for the structure (longer is fine).
            pub fn new_checked(buffer: T) -> $crate::wire::Result<$name<T>> {
                let v = $name::new_unchecked(buffer);
                v.check_len()?;
                Ok(v)
            }

            /// `Err(Truncated)` if the buffer is too short.
            pub fn check_len(&self) -> $crate::wire::Result<()> {
                $crate::wire::field::check_len($what, $len, self.buffer.as_ref().len())
            }

            /// Returns the underlying buffer.
            pub fn into_inner(self) -> T {
                self.buffer
            }
        }
    };
}

/// Declares, from one list, getters (`impl<T: AsRef<[u8]>>`) and setters
/// (`impl<T: AsRef<[u8]> + AsMut<[u8]>>`) of a view's fields. Each entry is a documented
/// getter name, an optional setter name, a kind and where the field is:
///
/// - `name, set_name: u32 @ field::X;`: a little-endian integer (`u8`, `u16`, `u32` or
///   `u64`) starting at `field::X`, a byte offset or a byte range. Without `, set_name`
///   the field has a getter only.
/// - `name, name_mut: [u8] @ field::X;`: the bytes of the range `field::X`, as a slice and
///   as a writable slice.
///
/// Setters are documented by a link to their getter. Fields that are more than a plain
/// integer or slice (bits, enums, 24-bit values) keep hand-written accessors.
macro_rules! accessors {
    ($name:ident {
        $( $(#[$m:meta])* $get:ident $(, $set:ident)? : $kind:tt @ $at:expr; )*
    }) => {
        impl<T: AsRef<[u8]>> $name<T> {
            $( $crate::wire::view::accessor!(get $(#[$m])* $get: $kind @ $at); )*
        }

        impl<T: AsRef<[u8]> + AsMut<[u8]>> $name<T> {
            $( $( $crate::wire::view::accessor!(set $get, $set: $kind @ $at); )? )*
        }
    };
}

/// One getter or setter of [`accessors!`].
macro_rules! accessor {
    (get $(#[$m:meta])* $get:ident: [u8] @ $at:expr) => {
        $(#[$m])*
        pub fn $get(&self) -> &[u8] {
            &self.buffer.as_ref()[$at]
        }
    };
    (set $get:ident, $set:ident: [u8] @ $at:expr) => {
        #[doc = concat!("[`", stringify!($get), "`](Self::", stringify!($get), "), writable.")]
        pub fn $set(&mut self) -> &mut [u8] {
            &mut self.buffer.as_mut()[$at]
        }
    };
    (get $(#[$m:meta])* $get:ident: $ty:tt @ $at:expr) => {
        $(#[$m])*
        pub fn $get(&self) -> $ty {
            let at = $crate::wire::field::FieldStart::first_byte(&$at);
            $crate::wire::field::LeInt::read(self.buffer.as_ref(), at)
        }
    };
    (set $get:ident, $set:ident: $ty:tt @ $at:expr) => {
        #[doc = concat!("Sets [`", stringify!($get), "`](Self::", stringify!($get), ").")]
        pub fn $set(&mut self, value: $ty) {
            let at = $crate::wire::field::FieldStart::first_byte(&$at);
            $crate::wire::field::LeInt::write(value, self.buffer.as_mut(), at);
        }
    };
}

pub(crate) use {accessor, accessors, view};
