//! Compiles the Slint views in `../ui/`. Debug info is always on: it only adds element
//! names to the generated code, and `i-slint-backend-testing` needs it to find elements.

fn main() {
    let config = slint_build::CompilerConfiguration::new().with_debug_info(true);
    slint_build::compile_with_config("../ui/main.slint", config).expect("Slint views compile");
}
