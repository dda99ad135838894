/*
 * capture_imu.ino - record IMU gestures on an Arduino Nano 33 BLE Sense (Rev1 or Rev2) for labkit.
 *
 * Prints the classic capture format on Serial at 9600 baud: a header line
 * "aX,aY,aZ,gX,gY,gZ", then for every gesture SAMPLES lines of six numbers (acceleration in g,
 * angular rate in deg/s, 3 decimals) and one blank line. A gesture starts when
 * |aX| + |aY| + |aZ| reaches TRIGGER_G. Save it with:
 *     labkit capture --port /dev/ttyACM0 --label punch -o punch.csv
 *
 * Which board? Rev1 has an LSM9DS1 IMU (library Arduino_LSM9DS1), Rev2 a BMI270 + BMM150
 * (library Arduino_BMI270_BMM150); the back of a Rev2 board says "Rev2". Set the line below
 * to match, install that library (Tools > Manage Libraries), and upload.
 */
#define BOARD_REV 1 /* 1: Nano 33 BLE Sense (LSM9DS1), 2: Nano 33 BLE Sense Rev2 (BMI270/BMM150) */

#if BOARD_REV == 2
#include <Arduino_BMI270_BMM150.h>
#else
#include <Arduino_LSM9DS1.h>
#endif

const float TRIGGER_G = 2.5; /* start recording when |aX|+|aY|+|aZ| reaches this, in g */
const int SAMPLES = 119;     /* readings per gesture: one second at the IMU's 119 Hz */

int samplesRead = SAMPLES;

void setup() {
  Serial.begin(9600);
  while (!Serial) {
  }
  if (!IMU.begin()) {
    Serial.println("Failed to initialize the IMU: check BOARD_REV at the top of this sketch.");
    while (1) {
    }
  }
  Serial.println("aX,aY,aZ,gX,gY,gZ");
}

void loop() {
  float aX, aY, aZ, gX, gY, gZ;

  /* wait for a movement strong enough to be a gesture */
  while (samplesRead == SAMPLES) {
    if (IMU.accelerationAvailable()) {
      IMU.readAcceleration(aX, aY, aZ);
      if (fabs(aX) + fabs(aY) + fabs(aZ) >= TRIGGER_G) {
        samplesRead = 0;
        break;
      }
    }
  }

  /* record it */
  while (samplesRead < SAMPLES) {
    if (IMU.accelerationAvailable() && IMU.gyroscopeAvailable()) {
      IMU.readAcceleration(aX, aY, aZ);
      IMU.readGyroscope(gX, gY, gZ);
      samplesRead++;
      Serial.print(aX, 3);
      Serial.print(',');
      Serial.print(aY, 3);
      Serial.print(',');
      Serial.print(aZ, 3);
      Serial.print(',');
      Serial.print(gX, 3);
      Serial.print(',');
      Serial.print(gY, 3);
      Serial.print(',');
      Serial.print(gZ, 3);
      Serial.println();
      if (samplesRead == SAMPLES) {
        Serial.println(); /* a blank line ends the gesture */
      }
    }
  }
}
