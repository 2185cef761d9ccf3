mod config;
fn main() {
    let p = std::env::args().nth(1).unwrap();
    match config::load(std::path::Path::new(&p)) { Ok(c) => println!("{c:#?}"), Err(e) => println!("{e}") }
}
