//! Every function shape `#[worker]` supports, each used directly and through `WorkerPool`.

use freethreading::{Backend, WorkerFn, WorkerPool, worker};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Point {
    pub x: i64,
    pub y: i64,
}

#[worker]
fn zero() -> u32 {
    7
}

#[worker]
fn one(x: u64) -> u64 {
    x * x
}

#[worker]
fn several(a: u32, b: String, c: Option<bool>) -> String {
    format!("{a}{b}{c:?}")
}

#[worker]
fn unit_return(x: u8) {
    let _ = x;
}

#[worker]
fn nothing_at_all() {}

#[worker(name = "shapes::renamed")]
fn renamed(x: i32) -> i32 {
    -x
}

#[worker(name = "shapes::trailing_comma")]
fn trailing_comma() -> bool {
    true
}

#[worker]
fn tuple_pattern((a, b): (u32, u32), Point { x, y }: Point) -> u32 {
    a + b + u32::try_from(x + y).unwrap_or(0)
}

#[worker]
fn mutable(mut v: Vec<u64>, mut n: u64) -> Vec<u64> {
    n += 1;
    v.push(n);
    v
}

/// Documented worker: the docs stay on the public name.
#[worker]
#[inline]
#[allow(clippy::needless_pass_by_value)]
#[must_use]
fn documented(s: String) -> usize {
    s.len()
}

#[worker]
pub fn public(p: Point) -> Point {
    Point { x: p.y, y: p.x }
}

#[worker]
pub(crate) fn crate_visible(items: Vec<String>) -> Option<String> {
    items.into_iter().next()
}

#[worker]
fn factorial(n: u64) -> u64 {
    if n <= 1 { 1 } else { n * factorial(n - 1) }
}

#[worker]
fn nested_result(x: u32) -> Result<u32, String> {
    if x > 0 { Ok(x) } else { Err("zero".to_owned()) }
}

mod nested {
    use freethreading::worker;

    #[worker]
    pub fn inner(x: u16) -> u16 {
        x + 1
    }

    pub fn via_parent(x: u64) -> u64 {
        super::one(x)
    }
}

fn direct_calls() {
    assert_eq!(zero(), 7);
    assert_eq!(one(3), 9);
    assert_eq!((*one)(4), 16);
    let as_pointer: fn(u64) -> u64 = *one;
    assert_eq!(as_pointer(5), 25);
    assert_eq!(several(1, "b".to_owned(), None), "1bNone");
    unit_return(1);
    nothing_at_all();
    assert_eq!(renamed(2), -2);
    assert!(trailing_comma());
    assert_eq!(tuple_pattern((1, 2), Point { x: 3, y: 4 }), 10);
    assert_eq!(mutable(vec![1], 1), vec![1, 2]);
    assert_eq!(documented("abc".to_owned()), 3);
    assert_eq!(public(Point { x: 1, y: 2 }), Point { x: 2, y: 1 });
    assert_eq!(crate_visible(vec!["a".to_owned()]), Some("a".to_owned()));
    assert_eq!(factorial(5), 120);
    assert_eq!(nested_result(0), Err("zero".to_owned()));
    assert_eq!(nested::inner(1), 2);
    assert_eq!(nested::via_parent(3), 9);
    assert_eq!(renamed::NAME, "shapes::renamed");
    assert!(one::NAME.ends_with("::one"));
    assert_eq!(one::call((6,)), 36);
}

fn through_a_pool(pool: &WorkerPool) -> Result<(), freethreading::Error> {
    assert_eq!(pool.apply(zero, ())?, 7);
    assert_eq!(pool.map(one, 0..4u64)?, vec![0, 1, 4, 9]);
    assert_eq!(pool.apply(one, (3,))?, 9);
    let strings = pool.starmap(several, vec![(1, "x".to_owned(), Some(true))])?;
    assert_eq!(strings, vec!["1xSome(true)".to_owned()]);
    pool.map(unit_return, [1u8, 2, 3])?;
    pool.apply(nothing_at_all, ())?;
    assert_eq!(pool.map(renamed, [1, 2])?, vec![-1, -2]);
    assert_eq!(pool.apply(trailing_comma, ())?, true);
    assert_eq!(
        pool.starmap(tuple_pattern, [((1, 1), Point { x: 1, y: 1 })])?,
        vec![4]
    );
    assert_eq!(pool.apply(mutable, (vec![], 0))?, vec![1]);
    assert_eq!(pool.map(documented, ["ab".to_owned()])?, vec![2]);
    assert_eq!(
        pool.map(public, [Point { x: 0, y: 9 }])?,
        vec![Point { x: 9, y: 0 }]
    );
    assert_eq!(pool.map(crate_visible, [vec![]])?, vec![None]);
    assert_eq!(pool.map(factorial, 1..=3u64)?, vec![1, 2, 6]);
    assert_eq!(pool.map(nested_result, [1])?, vec![Ok(1)]);
    assert_eq!(pool.map(nested::inner, [1, 2])?, vec![2, 3]);
    Ok(())
}

fn main() {
    freethreading::init();
    direct_calls();
    freethreading::with_backend(Backend::Threading, || {
        let pool = WorkerPool::new(2).expect("a pool of two threads");
        through_a_pool(&pool).expect("every task succeeds on threads");
    });
}
