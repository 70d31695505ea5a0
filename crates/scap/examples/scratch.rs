use crashscope_scap::capture::Replay;
use crashscope_scap::reader::Reader;
fn main() {
    let path = std::env::args().nth(1).unwrap();
    let mut r = Replay::new(Reader::open(std::path::Path::new(&path)).unwrap());
    while let Some((l, _)) = r.next_line() {
        println!("{}", l.text());
    }
    if let Some(e) = r.error {
        eprintln!("error: {e}");
    }
}
