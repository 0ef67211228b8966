//! Links the proof without the C runtime's start files: `src/main.rs`
//! defines `_start` itself, and there is no Rust `main`/std runtime.
//! libc stays linked (for `memcpy`/`memset`, `write` and `_exit`).

fn main() {
    println!("cargo:rustc-link-arg-bins=-nostartfiles");
    println!("cargo:rerun-if-changed=build.rs");
}
