//! The one random generator type of the library, in a module of its own so that every layer of
//! the crate can name it without importing the crate root.

/// The one random generator type of the library: ChaCha with 8 rounds, seeded explicitly.
/// Its stream is the same on every platform, so a seed means the same thing everywhere.
pub type Rng = rand_chacha::ChaCha8Rng;
