//! The part every view shares: a buffer, its length check and the way out of it.

/// Declares a view `$name<T: AsRef<[u8]>>` over a structure of `$len` bytes (`$what` names
/// it in a `Truncated` error), with `new_unchecked`, `new_checked`, `check_len` and
/// `into_inner`; the file that declares it adds the field getters and setters.
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

pub(crate) use view;
