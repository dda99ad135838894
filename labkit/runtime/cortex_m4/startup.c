/* Minimal Cortex-M4 start-up for running labkit-generated C in QEMU (mps2-an386):
 * a vector table, .data copied from flash, then newlib's _start (which clears .bss,
 * sets up semihosting for printf/fopen, calls main and exit). */
#include <stdint.h>

extern uint32_t __data_load, __data_start__, __data_end__, __StackTop;
extern void _start(void);

void Reset_Handler(void) {
    uint32_t *src = &__data_load, *dst = &__data_start__;
    while (dst < &__data_end__) *dst++ = *src++;
    /* the FPU (CP10, CP11) is off after reset; code built for -mfloat-abi=hard needs it */
    *(volatile uint32_t *)0xE000ED88 |= (0xFu << 20);
    __asm volatile("dsb\n isb");
    _start();
    for (;;) {
    }
}

static void Fault_Handler(void) {
    for (;;) {
    }
}

__attribute__((section(".isr_vector"), used)) static const void *const vectors[16] = {
    &__StackTop, (void *)Reset_Handler, (void *)Fault_Handler, (void *)Fault_Handler,
    (void *)Fault_Handler, (void *)Fault_Handler, (void *)Fault_Handler, 0, 0, 0, 0,
    (void *)Fault_Handler, (void *)Fault_Handler, 0, (void *)Fault_Handler, (void *)Fault_Handler,
};
