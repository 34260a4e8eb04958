// Emits the linker flags a Node addon needs; a no-op for `--no-default-features` builds.
fn main() {
    if std::env::var_os("CARGO_FEATURE_NAPI").is_some() {
        napi_build::setup();
    }
}
