//! The firmware's runtime: reset code, the Cortex-M vector table, the panic
//! handler and, for qemu runs, semihosting and the stack measurement.
//!
//! Reset (written in assembly, since no Rust code may run before statics
//! exist) copies `.data` from flash, zeroes `.bss`, paints the stack with
//! [`PAINT`] and calls `firmware_main`. The symbols it uses come from the
//! linker scripts in `link/`.

/// The word the stack is painted with at reset; [`stack_peak`] looks for
/// the lowest word that no longer holds it.
#[cfg(feature = "qemu")]
const PAINT: u32 = 0xA5A5_A5A5;

// Cortex-M (ARMv6-M instructions only, so the same code serves the M0 and the
// M4F). On hard-float targets the FPU is switched on first (CPACR CP10/CP11).
#[cfg(target_arch = "arm")]
core::arch::global_asm!(
    ".section .text.reset, \"ax\"",
    ".global reset",
    ".type reset, %function",
    ".thumb_func",
    "reset:",
    ".if {hard_float}",
    "    ldr r0, =0xE000ED88",
    "    ldr r1, [r0]",
    "    ldr r2, =0x00F00000",
    "    orrs r1, r2",
    "    str r1, [r0]",
    "    dsb",
    "    isb",
    ".endif",
    "    ldr r0, =__data_start",
    "    ldr r1, =__data_end",
    "    ldr r2, =__data_load",
    "1:  cmp r0, r1",
    "    bhs 2f",
    "    ldr r3, [r2]",
    "    str r3, [r0]",
    "    adds r0, #4",
    "    adds r2, #4",
    "    b 1b",
    "2:  ldr r0, =__bss_start",
    "    ldr r1, =__bss_end",
    "    movs r3, #0",
    "3:  cmp r0, r1",
    "    bhs 4f",
    "    str r3, [r0]",
    "    adds r0, #4",
    "    b 3b",
    "4:  ldr r0, =__stack_bottom",
    "    mov r1, sp",
    "    ldr r3, =0xA5A5A5A5",
    "5:  cmp r0, r1",
    "    bhs 6f",
    "    str r3, [r0]",
    "    adds r0, #4",
    "    b 5b",
    "6:  bl firmware_main",
    "    b 6b",
    ".ltorg",
    ".size reset, . - reset",
    hard_float = const HARD_FLOAT,
);

#[cfg(target_arch = "arm")]
const HARD_FLOAT: u8 = if cfg!(target_abi = "eabihf") { 1 } else { 0 };

#[cfg(target_arch = "riscv32")]
core::arch::global_asm!(
    ".section .text.reset, \"ax\"",
    ".global reset",
    ".type reset, @function",
    "reset:",
    "    la sp, __stack_top",
    "    la t0, __data_start",
    "    la t1, __data_end",
    "    la t2, __data_load",
    "1:  bgeu t0, t1, 2f",
    "    lw t3, 0(t2)",
    "    sw t3, 0(t0)",
    "    addi t0, t0, 4",
    "    addi t2, t2, 4",
    "    j 1b",
    "2:  la t0, __bss_start",
    "    la t1, __bss_end",
    "3:  bgeu t0, t1, 4f",
    "    sw zero, 0(t0)",
    "    addi t0, t0, 4",
    "    j 3b",
    "4:  la t0, __stack_bottom",
    "    li t3, 0xA5A5A5A5",
    "5:  bgeu t0, sp, 6f",
    "    sw t3, 0(t0)",
    "    addi t0, t0, 4",
    "    j 5b",
    "6:  call firmware_main",
    "    j 6b",
    ".size reset, . - reset",
);

#[cfg(target_arch = "arm")]
extern "C" {
    fn reset() -> !;
}

/// Vector table entries 1 to 3 (entry 0, the initial stack pointer, is
/// written by the linker script): reset, NMI and HardFault.
#[cfg(target_arch = "arm")]
#[link_section = ".vectors.handlers"]
#[used]
static HANDLERS: [unsafe extern "C" fn() -> !; 3] = [reset, fault, fault];

/// NMI and HardFault: the job went wrong in a way no check could report.
#[cfg(target_arch = "arm")]
unsafe extern "C" fn fault() -> ! {
    exit(crate::FAULT)
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    exit(crate::PANIC)
}

/// Ends the run with `code` (0 = success): through semihosting in the qemu
/// build, otherwise by stopping here.
pub fn exit(code: u32) -> ! {
    #[cfg(feature = "qemu")]
    semihosting::exit(code);
    #[cfg(not(feature = "qemu"))]
    {
        // Keeps the result observable to a debugger, and in the binary.
        static RESULT: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(u32::MAX);
        RESULT.store(code, core::sync::atomic::Ordering::Relaxed);
        loop {
            core::hint::spin_loop();
        }
    }
}

/// Bytes of the stack written since reset: from its top down to the lowest
/// word that no longer holds the paint.
#[cfg(feature = "qemu")]
pub fn stack_peak() -> usize {
    extern "C" {
        static __stack_bottom: u32;
        static __stack_top: u32;
    }
    let bottom = core::ptr::addr_of!(__stack_bottom);
    let top = core::ptr::addr_of!(__stack_top);
    let words = (top as usize - bottom as usize) / 4;
    let mut untouched = 0;
    // SAFETY: the words between the two linker symbols are the stack, which
    // is mapped RAM; everything below the current frame is only read.
    while untouched < words && unsafe { core::ptr::read_volatile(bottom.add(untouched)) } == PAINT {
        untouched += 1;
    }
    (words - untouched) * 4
}

/// ARM and RISC-V semihosting: the host (qemu with `-semihosting`) prints
/// text and takes the exit status.
#[cfg(feature = "qemu")]
pub mod semihosting {
    const SYS_WRITE0: usize = 0x04;
    const SYS_EXIT_EXTENDED: usize = 0x20;
    const ADP_STOPPED_APPLICATION_EXIT: usize = 0x20026;

    /// Performs semihosting operation `op` with argument `arg`.
    ///
    /// # Safety
    /// `arg` must be what operation `op` expects.
    unsafe fn call(op: usize, arg: usize) -> usize {
        let result;
        #[cfg(target_arch = "arm")]
        // SAFETY: the semihosting trap reads memory at `arg` only (the caller's promise).
        unsafe {
            core::arch::asm!("bkpt 0xab", inout("r0") op => result, in("r1") arg, options(nostack));
        }
        #[cfg(target_arch = "riscv32")]
        // SAFETY: as above. The trap is this exact uncompressed, aligned sequence.
        unsafe {
            core::arch::asm!(
                ".option push",
                ".option norvc",
                ".balign 16",
                "slli zero, zero, 0x1f",
                "ebreak",
                "srai zero, zero, 7",
                ".option pop",
                inout("a0") op => result, in("a1") arg, options(nostack),
            );
        }
        result
    }

    /// Prints `text`, which must end with a NUL byte (or nothing is printed).
    pub fn print(text: &[u8]) {
        if text.last() == Some(&0) {
            // SAFETY: SYS_WRITE0 reads a NUL-terminated string, and there is one.
            unsafe { call(SYS_WRITE0, text.as_ptr() as usize) };
        }
    }

    /// Ends the qemu run with exit status `code`.
    pub fn exit(code: u32) -> ! {
        let block = [ADP_STOPPED_APPLICATION_EXIT, code as usize];
        // SAFETY: SYS_EXIT_EXTENDED reads the two words of `block`.
        unsafe { call(SYS_EXIT_EXTENDED, block.as_ptr() as usize) };
        loop {
            core::hint::spin_loop();
        }
    }
}
