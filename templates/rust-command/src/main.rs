//! {{name}}: a WebAssembly command. Build it with `kiln build`, run it with
//! `wasmtime run target/kiln/{{name}}.wasm NAME`.

fn main() {
    let name = std::env::args().nth(1).unwrap_or_else(|| "world".to_string());
    println!("Hello, {name}!");
}
