#include "util/mutex.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>
#include <vector>

namespace fhirbulk {
namespace {

class Counter {
 public:
  void Add() EXCLUDES(mu_) {
    MutexLock lock(&mu_);
    // A read-modify-write in two steps, with a yield between: without the lock, concurrent
    // adders lose updates.
    int v = value_;
    std::this_thread::yield();
    value_ = v + 1;
  }
  int value() EXCLUDES(mu_) {
    MutexLock lock(&mu_);
    return value_;
  }

 private:
  Mutex mu_;
  int value_ GUARDED_BY(mu_) = 0;
};

TEST(MutexTest, MutexLockExcludesOtherHolders) {
  Counter c;
  std::vector<std::thread> threads;
  threads.reserve(4);
  for (int t = 0; t < 4; t++) {
    threads.emplace_back([&c] {
      for (int i = 0; i < 2000; i++) c.Add();
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(c.value(), 8000);
}

TEST(MutexTest, WaitUntilTimesOutWithTheMutexHeld) {
  Mutex mu;
  CondVar cv;
  MutexLock lock(&mu);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(cv.WaitUntil(&mu, start + std::chrono::milliseconds(50)));
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(50));
  // MutexLock now unlocks mu: had WaitUntil not taken it back, that would be an unlock of an
  // unlocked mutex (undefined; ThreadSanitizer reports it).
}

class Queue {
 public:
  void Push(int v) EXCLUDES(mu_) {
    {
      MutexLock lock(&mu_);
      items_.push_back(v);
    }
    changed_.Signal();
  }
  // Waits for an item; -1 after `timeout` without one.
  int Pop(std::chrono::milliseconds timeout) EXCLUDES(mu_) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    MutexLock lock(&mu_);
    while (items_.empty()) {
      if (!changed_.WaitUntil(&mu_, deadline)) return -1;
    }
    int v = items_.front();
    items_.erase(items_.begin());
    return v;
  }

 private:
  Mutex mu_;
  CondVar changed_;
  std::vector<int> items_ GUARDED_BY(mu_);
};

TEST(MutexTest, SignalWakesAWaiterInOrder) {
  Queue q;
  std::vector<int> got;
  got.reserve(100);
  std::thread consumer([&] {
    for (int i = 0; i < 100; i++) got.push_back(q.Pop(std::chrono::seconds(30)));
  });
  for (int i = 0; i < 100; i++) q.Push(i);
  consumer.join();
  ASSERT_EQ(got.size(), 100u);
  for (int i = 0; i < 100; i++) EXPECT_EQ(got[i], i);
  EXPECT_EQ(q.Pop(std::chrono::milliseconds(10)), -1);
}

TEST(MutexTest, WaitReleasesTheMutexWhileWaiting) {
  Mutex mu;
  CondVar cv;
  bool ready = false;  // guarded by mu
  std::thread setter([&] {
    // Takes mu before the main thread does, or while it is inside Wait: had Wait kept mu,
    // this would never get it and the test would hang.
    MutexLock lock(&mu);
    ready = true;
    cv.SignalAll();
  });
  {
    MutexLock lock(&mu);
    while (!ready) cv.Wait(&mu);
    EXPECT_TRUE(ready);
  }
  setter.join();
}

}  // namespace
}  // namespace fhirbulk
