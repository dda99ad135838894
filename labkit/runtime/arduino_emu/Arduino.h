/*
 * A small Arduino API for running a generated sketch on the emulated Cortex-M4 (QEMU
 * mps2-an386) in labkit's tests: Serial prints to the host through semihosting, micros()
 * counts instructions (at an assumed 64 MHz, one instruction per cycle: an estimate of the
 * nRF52840, not a measurement), digitalWrite on the RGB LED pins is logged as "#led" lines.
 * Serial.print(float, digits) rounds as the Arduino core's Print does, not as printf.
 * Only what labkit's sketches use is here.
 */
#ifndef LABKIT_ARDUINO_EMU_H
#define LABKIT_ARDUINO_EMU_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HIGH 1
#define LOW 0
#define INPUT 0
#define OUTPUT 1
#define LED_BUILTIN 13
#define LEDR 22
#define LEDG 23
#define LEDB 24

void pinMode(int pin, int mode);
void digitalWrite(int pin, int value);
unsigned long micros(void);
unsigned long millis(void);
void delay(unsigned long ms);

class EmuSerial {
  public:
    void begin(unsigned long) {}
    operator bool() const { return true; }
    int available();
    int read();
    void print(const char *s) { fputs(s, stdout); }
    void print(char c) { putchar(c); }
    void print(int v) { printf("%d", v); }
    void print(long v) { printf("%ld", v); }
    void print(unsigned int v) { printf("%u", v); }
    void print(unsigned long v) { printf("%lu", v); }
    void print(double v, int digits = 2);
    template <typename T> void println(T v) { print(v); putchar('\n'); }
    void println(double v, int digits) { print(v, digits); putchar('\n'); }
    void println() { putchar('\n'); }
};
extern EmuSerial Serial;

#endif
