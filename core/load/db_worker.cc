#include "load/db_worker.h"

namespace fhirbulk {

DbWorker::DbWorker(std::unique_ptr<PgConnection> conn, size_t max_queued)
    : conn_(std::move(conn)), max_queued_(max_queued == 0 ? 1 : max_queued) {
  thread_ = std::thread([this] { Run(); });
}

DbWorker::~DbWorker() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  changed_.notify_all();
  thread_.join();
}

Status DbWorker::Submit(Task task) {
  std::unique_lock<std::mutex> lock(mu_);
  changed_.wait(lock, [this] { return queue_.size() < max_queued_ || !error_.ok(); });
  if (!error_.ok()) return error_;
  queue_.push_back(std::move(task));
  changed_.notify_all();
  return Status::OK();
}

Status DbWorker::Drain() {
  std::unique_lock<std::mutex> lock(mu_);
  changed_.wait(lock, [this] { return (queue_.empty() && !busy_) || !error_.ok(); });
  return error_;
}

void DbWorker::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    changed_.wait(lock, [this] { return !queue_.empty() || stop_; });
    if (queue_.empty()) return;  // stop_ and nothing left
    Task task = std::move(queue_.front());
    queue_.pop_front();
    busy_ = true;
    bool skip = !error_.ok();
    lock.unlock();
    Status s = skip ? Status::OK() : task(conn_.get());
    lock.lock();
    busy_ = false;
    if (!s.ok() && error_.ok()) error_ = s;
    changed_.notify_all();
  }
}

}  // namespace fhirbulk
