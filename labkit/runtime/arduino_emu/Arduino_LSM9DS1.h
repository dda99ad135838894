#include "lk_replay_imu.h"
