#include "server/status_cache.h"

#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

namespace fhirbulk {
namespace {

StatusCache::Entry MakeEntry(const std::string& client, bool running, int status) {
  StatusCache::Entry e;
  e.client_id = client;
  e.running = running;
  e.response.status = status;
  return e;
}

constexpr int64_t kSecond = 1000000;

TEST(StatusCacheTest, AnswersTheOwnerWithinTtlOnly) {
  StatusCache cache(kSecond, 100);
  cache.Put("job", MakeEntry("a", false, 200), 10 * kSecond);
  std::shared_ptr<const StatusCache::Entry> e;
  int wait = 0;
  EXPECT_EQ(cache.Get("job", "a", 10 * kSecond + 500000, 1000, &e, &wait),
            StatusCache::Hit::kAnswer);
  EXPECT_EQ(e->response.status, 200);
  EXPECT_EQ(cache.Get("job", "b", 10 * kSecond + 500000, 1000, &e, &wait), StatusCache::Hit::kMiss);
  EXPECT_EQ(cache.Get("other", "a", 10 * kSecond, 1000, &e, &wait), StatusCache::Hit::kMiss);
  EXPECT_EQ(cache.Get("job", "a", 11 * kSecond, 1000, &e, &wait), StatusCache::Hit::kMiss);
  // expired entries are gone, even for a later fresh-looking clock
  EXPECT_EQ(cache.Get("job", "a", 10 * kSecond, 1000, &e, &wait), StatusCache::Hit::kMiss);
}

TEST(StatusCacheTest, AnEntryMayLiveShorterButNotLonger) {
  StatusCache cache(kSecond, 100);
  std::shared_ptr<const StatusCache::Entry> e;
  int wait = 0;
  cache.Put("partial", MakeEntry("a", true, 202), 0, 100000);  // allowPartialManifests: 100 ms
  EXPECT_EQ(cache.Get("partial", "a", 99999, 0, &e, &wait), StatusCache::Hit::kAnswer);
  EXPECT_EQ(cache.Get("partial", "a", 100000, 0, &e, &wait), StatusCache::Hit::kMiss);
  cache.Put("long", MakeEntry("a", true, 202), 0, 5 * kSecond);  // capped at the cache's ttl
  EXPECT_EQ(cache.Get("long", "a", kSecond, 0, &e, &wait), StatusCache::Hit::kMiss);
  cache.Put("default", MakeEntry("a", true, 202), 0);
  EXPECT_EQ(cache.Get("default", "a", kSecond - 1, 0, &e, &wait), StatusCache::Hit::kAnswer);
}

TEST(StatusCacheTest, RunningJobsApplyThePollInterval) {
  StatusCache cache(5 * kSecond, 100);
  cache.Put("job", MakeEntry("a", true, 202), 0);
  std::shared_ptr<const StatusCache::Entry> e;
  int wait = 0;
  EXPECT_EQ(cache.Get("job", "a", 300000, 1000, &e, &wait), StatusCache::Hit::kThrottled);
  EXPECT_EQ(wait, 1);
  EXPECT_EQ(cache.Get("job", "a", kSecond, 1000, &e, &wait), StatusCache::Hit::kAnswer);
  EXPECT_EQ(cache.Get("job", "a", kSecond + 1, 2500, &e, &wait), StatusCache::Hit::kThrottled);
  EXPECT_EQ(wait, 3);
  // no interval: every poll is answered
  EXPECT_EQ(cache.Get("job", "a", kSecond + 2, 0, &e, &wait), StatusCache::Hit::kAnswer);
  // completed jobs are never throttled
  cache.Put("done", MakeEntry("a", false, 200), 0);
  EXPECT_EQ(cache.Get("done", "a", 1, 1000, &e, &wait), StatusCache::Hit::kAnswer);
}

TEST(StatusCacheTest, EraseAndBound) {
  StatusCache cache(kSecond, 2);
  std::shared_ptr<const StatusCache::Entry> e;
  int wait = 0;
  cache.Put("j1", MakeEntry("a", false, 200), 0);
  cache.Erase("j1");
  EXPECT_EQ(cache.Get("j1", "a", 1, 0, &e, &wait), StatusCache::Hit::kMiss);
  cache.Put("j1", MakeEntry("a", false, 200), 0);
  cache.Put("j2", MakeEntry("a", false, 200), 0);
  cache.Put("j3", MakeEntry("a", false, 200), 2 * kSecond);  // full: expired ones go first
  EXPECT_EQ(cache.Get("j3", "a", 2 * kSecond, 0, &e, &wait), StatusCache::Hit::kAnswer);
  EXPECT_EQ(cache.Get("j1", "a", 2 * kSecond, 0, &e, &wait), StatusCache::Hit::kMiss);
}

// nginx's thread pool and event loop call one cache concurrently; under ThreadSanitizer
// (scripts/run-tsan.sh) this shows any access outside the lock.
TEST(StatusCacheTest, ConcurrentPutGetErase) {
  StatusCache cache(kSecond, 8);  // small: the bound's sweep runs too
  std::vector<std::thread> threads;
  threads.reserve(4);
  std::atomic<int> answers{0};
  for (int t = 0; t < 4; t++) {
    threads.emplace_back([&cache, &answers, t] {
      std::shared_ptr<const StatusCache::Entry> e;
      int wait = 0;
      for (int i = 0; i < 500; i++) {
        const std::string job = "j" + std::to_string((i + t) % 12);
        if (i % 3 == 0) cache.Put(job, MakeEntry("a", i % 2 == 0, 200), i);
        if (cache.Get(job, "a", i, 0, &e, &wait) == StatusCache::Hit::kAnswer) {
          EXPECT_EQ(e->response.status, 200);
          answers++;
        }
        if (i % 7 == 0) cache.Erase(job);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_GT(answers.load(), 0);
}

}  // namespace
}  // namespace fhirbulk
