/* The emulated board: main() runs setup() then loop() until the replayed input (IMU readings
 * or text on Serial, lk_replay.c) runs out and the sketch asks for more. */
#include "Arduino.h"
#include "lk_replay_imu.h"

extern "C" {
extern const float lk_replay[][6]; /* aX, aY, aZ (g), gX, gY, gZ (deg/s) per sample */
extern const int lk_replay_count;
extern const char lk_serial_input[]; /* what the host "types" into the serial monitor */
}

void setup();
void loop();

EmuSerial Serial;
ReplayIMU IMU;

static volatile uint32_t *const TIMER0 = (volatile uint32_t *)0x40000000u; /* CTRL, VALUE, RELOAD */
static int next_sample = 0;
static int last_sample = 0;
static int next_char = 0;

static void end_of_replay(void) {
    printf("#end of replay\n");
    fflush(stdout);
    exit(0);
}

int EmuSerial::available() {
    if (lk_serial_input[next_char] == '\0') end_of_replay();
    return 1;
}
int EmuSerial::read() { return lk_serial_input[next_char] ? (unsigned char)lk_serial_input[next_char++] : -1; }

void pinMode(int, int) {}

void digitalWrite(int pin, int value) {
    if (pin == LEDR || pin == LEDG || pin == LEDB) {
        printf("#led %c=%s\n", pin == LEDR ? 'R' : (pin == LEDG ? 'G' : 'B'), value == LOW ? "on" : "off");
    }
}

/* QEMU runs with -icount shift=8: 256 ns of virtual time per instruction, and the timer
 * counts at 25 MHz, so 6.4 ticks per instruction; 64 instructions per microsecond at 64 MHz. */
unsigned long micros(void) {
    uint64_t ticks = 0xFFFFFFFFu - TIMER0[1];
    return (unsigned long)(ticks * 10 / (64 * 64));
}
unsigned long millis(void) { return micros() / 1000; }
void delay(unsigned long) {}

int ReplayIMU::accelerationAvailable() {
    if (next_sample >= lk_replay_count) end_of_replay();
    return 1;
}
int ReplayIMU::gyroscopeAvailable() { return next_sample < lk_replay_count; }

int ReplayIMU::readAcceleration(float &x, float &y, float &z) {
    last_sample = next_sample++;
    x = lk_replay[last_sample][0];
    y = lk_replay[last_sample][1];
    z = lk_replay[last_sample][2];
    return 1;
}

int ReplayIMU::readGyroscope(float &x, float &y, float &z) { /* the sample whose acceleration was just read */
    x = lk_replay[last_sample][3];
    y = lk_replay[last_sample][4];
    z = lk_replay[last_sample][5];
    return 1;
}

int main(void) {
    TIMER0[2] = 0xFFFFFFFFu;
    TIMER0[1] = 0xFFFFFFFFu;
    TIMER0[0] = 1u;
    setup();
    for (;;) loop();
}

/* Serial.print(x, digits) as the Arduino core prints a float, so that the emulated board prints
 * what the real one does: add half of the last digit, print the whole part, then peel off one
 * decimal at a time, in double precision. On exact ties this differs from printf (0.1875 with
 * 3 digits: "0.187" here, "0.188" from printf). labkit.deploy.sketch.arduino_float is the same
 * in Python. */
void EmuSerial::print(double v, int digits) {
    if (digits < 0) digits = 2;
    if (isnan(v)) { fputs("nan", stdout); return; }
    if (isinf(v)) { fputs("inf", stdout); return; }
    if (v > 4294967040.0 || v < -4294967040.0) { fputs("ovf", stdout); return; }
    if (v < 0.0) { putchar('-'); v = -v; }
    double half = 0.5;
    for (int i = 0; i < digits; i++) half /= 10.0;
    v += half;
    unsigned long whole = (unsigned long)v;
    double rest = v - (double)whole;
    printf("%lu", whole);
    if (digits > 0) putchar('.');
    while (digits-- > 0) {
        rest *= 10.0;
        unsigned int digit = (unsigned int)rest;
        printf("%u", digit);
        rest -= digit;
    }
}
