//! One process's open file descriptors by number. Looked up for nearly every event a view
//! asks about (its fd's name and type), so the low numbers every program uses are slots of a
//! vector, and only numbers past them go to a map.

use super::fds::Fd;
use crate::intmap::IntMap;

/// Descriptors below this are kept in the vector.
const DENSE: i64 = 1024;

#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FdTable {
    dense: Vec<Option<Fd>>,
    sparse: IntMap<Fd>,
}

/// Where `fd` goes in the vector, when it is one of the low numbers.
#[inline]
fn slot(fd: i64) -> Option<usize> {
    (0..DENSE).contains(&fd).then_some(fd as usize)
}

impl FdTable {
    #[inline]
    pub fn get(&self, fd: &i64) -> Option<&Fd> {
        match slot(*fd) {
            Some(i) => self.dense.get(i)?.as_ref(),
            None => self.sparse.get(fd),
        }
    }

    #[inline]
    pub fn get_mut(&mut self, fd: &i64) -> Option<&mut Fd> {
        match slot(*fd) {
            Some(i) => self.dense.get_mut(i)?.as_mut(),
            None => self.sparse.get_mut(fd),
        }
    }

    /// Sets `fd`, returning what it held.
    pub fn insert(&mut self, fd: i64, f: Fd) -> Option<Fd> {
        match slot(fd) {
            Some(i) => {
                if self.dense.len() <= i {
                    self.dense.resize_with(i + 1, || None);
                }
                self.dense[i].replace(f)
            }
            None => self.sparse.insert(fd, f),
        }
    }

    pub fn remove(&mut self, fd: &i64) -> Option<Fd> {
        match slot(*fd) {
            Some(i) => self.dense.get_mut(i)?.take(),
            None => self.sparse.remove(fd),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn low_high_and_negative_numbers_are_kept_alike() {
        let mut t = FdTable::default();
        for fd in [0, 3, 1023, 1024, 70_000, -100] {
            assert_eq!(t.insert(fd, Fd::new('f', format!("/f{fd}"))), None);
        }
        for fd in [0, 3, 1023, 1024, 70_000, -100] {
            assert_eq!(t.get(&fd).map(|f| f.name.clone()), Some(format!("/f{fd}")));
        }
        assert!(t.get(&2).is_none() && t.get(&5000).is_none() && t.get(&-1).is_none());
        let old = t.insert(3, Fd::new('p', String::new()));
        assert_eq!(old.map(|f| f.kind), Some('f'));
        if let Some(f) = t.get_mut(&1024) {
            f.name = "/renamed".into();
        }
        assert_eq!(t.get(&1024).map(|f| f.name.as_str()), Some("/renamed"));
        assert!(t.remove(&3).is_some() && t.remove(&3).is_none());
        assert!(t.remove(&70_000).is_some() && t.get(&70_000).is_none());
        assert!(t.remove(&9999).is_none() && t.remove(&500).is_none());
        assert_eq!(t.get(&0).map(|f| f.kind), Some('f'));
    }
}
