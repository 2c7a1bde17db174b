//! Re-embeds the migrations in `#[sqlx::test]` binaries when they change.

#![expect(clippy::print_stdout, reason = "cargo reads build script instructions from stdout")]

fn main() {
    println!("cargo:rerun-if-changed=../migrations");
}
