//! A counting global allocator and an observer that reads it at every step, for the
//! no-allocation tests (`dense`, `image_layers`); `main.rs` installs [`Counting`] as the
//! binary's `#[global_allocator]`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use downhill::train::Observer;

/// Counts every allocation and reallocation of the process (all threads).
pub struct Counting;
pub static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// The allocations between the second and the last step of each epoch, in `during`.
pub struct Watch {
    pub at_second_step: Option<usize>,
    pub during: Vec<usize>,
}

impl Observer for Watch {
    fn on_step(&mut self, _epoch: usize, step: usize, steps: usize, _: f64) {
        let now = ALLOCATIONS.load(Ordering::Relaxed);
        if step == 1 {
            self.at_second_step = Some(now);
        } else if step == steps - 1 {
            self.during.push(now - self.at_second_step.unwrap());
        }
    }
}
