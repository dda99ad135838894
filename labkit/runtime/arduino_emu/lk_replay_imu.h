/* The IMU of the emulated board: replays recorded readings (lk_replay.c, written by labkit)
 * and ends the program when they run out. Same API as Arduino_LSM9DS1 / Arduino_BMI270_BMM150. */
#ifndef LABKIT_REPLAY_IMU_H
#define LABKIT_REPLAY_IMU_H

class ReplayIMU {
  public:
    int begin() { return 1; }
    int accelerationAvailable();
    int gyroscopeAvailable();
    int readAcceleration(float &x, float &y, float &z);
    int readGyroscope(float &x, float &y, float &z);
};
extern ReplayIMU IMU;

#endif
