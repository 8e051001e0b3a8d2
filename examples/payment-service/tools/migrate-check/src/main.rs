//! Checks that migration files are numbered without gaps (sample tool of the example).
fn main() {
    let mut buf = itoa::Buffer::new();
    let n = std::fs::read_dir("migrations").map(|d| d.count()).unwrap_or(0);
    println!("{} migrations", buf.format(n));
    let _ = memchr::memchr(b'\n', b"a\nb");
}
