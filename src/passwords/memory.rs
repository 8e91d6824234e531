//! The argon2 working memory of a hashing thread, kept from one hash to the next.
//!
//! argon2 works in m KiB of memory (19 MiB at the current parameters). The crate's own calls
//! allocate and zero that memory for every hash, and on a hashing thread that waits between
//! jobs the allocator has often handed the pages back to the system in between, so every hash
//! also faulted its 19 MiB in again. A hashing thread keeps one block array of the current
//! parameters' size instead and hashes into it. argon2 writes each block before it reads it (the
//! first pass computes every block from blocks already computed; later passes combine with what
//! the first wrote), so what an earlier hash left in the memory changes nothing: the tests hash
//! into memory filled with other data and compare with the crate's own result. A stored hash of
//! a larger memory cost (an imported one, within [`super::verify::ARGON2_MAX_M_KIB`]) gets
//! memory of its own, for that hash only.

use std::cell::RefCell;

use argon2::{Argon2, Block};

thread_local! {
    static KEPT: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// The output of `argon` for `password` and `salt`, written to `out` (whose length is the
/// output length), in this thread's kept memory when it is large enough.
pub fn hash_into(
    argon: &Argon2<'_>,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
) -> argon2::Result<()> {
    let needed = argon.params().block_count();
    let kept = super::argon2id().params().block_count();
    if needed > kept {
        return argon.hash_password_into(password, salt, out);
    }
    KEPT.with_borrow_mut(|blocks| {
        if blocks.len() < needed {
            blocks.resize(kept, Block::new());
        }
        argon.hash_password_into_with_memory(password, salt, out, &mut blocks[..needed])
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::{Algorithm, Params, Version};

    fn crate_own(argon: &Argon2<'_>, password: &[u8], salt: &[u8]) -> Vec<u8> {
        let mut out = vec![0u8; 32];
        argon.hash_password_into(password, salt, &mut out).unwrap();
        out
    }

    #[test]
    fn kept_memory_gives_the_crates_own_output_whatever_it_held_before() {
        let current = super::super::argon2id();
        let small = Argon2::new(
            Algorithm::Argon2i,
            Version::V0x10,
            Params::new(4096, 3, 2, None).unwrap(),
        );
        let salt = b"sixteen byte sal";
        // Dirty the kept memory with other data first, then hash with each in turn.
        KEPT.with_borrow_mut(|b| {
            b.resize(current.params().block_count(), Block::new());
            for (i, block) in b.iter_mut().enumerate() {
                for (j, word) in block.as_mut().iter_mut().enumerate() {
                    *word = (i * 131 + j * 7) as u64 ^ 0xdead_beef;
                }
            }
        });
        for (argon, password) in [
            (&current, b"first password".as_slice()),
            (&small, b"second".as_slice()),
            (&current, b"first password".as_slice()),
        ] {
            let mut out = vec![0u8; 32];
            hash_into(argon, password, salt, &mut out).unwrap();
            assert_eq!(out, crate_own(argon, password, salt));
        }
    }

    #[test]
    fn a_larger_cost_than_the_current_one_gets_memory_of_its_own() {
        let large = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(40_000, 1, 1, None).unwrap(),
        );
        let mut out = vec![0u8; 32];
        hash_into(&large, b"pw", b"sixteen byte sal", &mut out).unwrap();
        assert_eq!(out, crate_own(&large, b"pw", b"sixteen byte sal"));
        let kept = KEPT.with_borrow(|b| b.len());
        assert!(kept <= super::super::argon2id().params().block_count());
    }
}
