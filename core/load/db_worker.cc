#include "load/db_worker.h"

namespace fhirbulk {

DbWorker::DbWorker(std::unique_ptr<PgConnection> conn, size_t max_queued)
    : conn_(std::move(conn)), max_queued_(max_queued == 0 ? 1 : max_queued) {
  thread_ = std::thread([this] { Run(); });
}

DbWorker::~DbWorker() {
  {
    MutexLock lock(&mu_);
    stop_ = true;
  }
  changed_.SignalAll();
  thread_.join();
}

Status DbWorker::Submit(Task task) {
  MutexLock lock(&mu_);
  while (queue_.size() >= max_queued_ && error_.ok()) changed_.Wait(&mu_);
  if (!error_.ok()) return error_;
  queue_.push_back(std::move(task));
  changed_.SignalAll();
  return Status::OK();
}

Status DbWorker::Drain() {
  MutexLock lock(&mu_);
  while (!(queue_.empty() && !busy_) && error_.ok()) changed_.Wait(&mu_);
  return error_;
}

void DbWorker::Run() {
  MutexLock lock(&mu_);
  for (;;) {
    while (queue_.empty() && !stop_) changed_.Wait(&mu_);
    if (queue_.empty()) return;  // stop_ and nothing left
    Task task = std::move(queue_.front());
    queue_.pop_front();
    busy_ = true;
    bool skip = !error_.ok();
    mu_.Unlock();
    Status s = skip ? Status::OK() : task(conn_.get());
    mu_.Lock();
    busy_ = false;
    if (!s.ok() && error_.ok()) error_ = s;
    changed_.SignalAll();
  }
}

}  // namespace fhirbulk
