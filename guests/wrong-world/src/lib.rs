//! `wrong-world`: a component of another world (`test:other/other`, whose `evaluate` has a
//! different signature), for the test that the host refuses it instead of calling it.

wit_bindgen::generate!({ world: "other", path: "wit" });

struct Other;

impl Guest for Other {
    fn evaluate(_input: String) -> bool {
        true
    }
}

export!(Other);
