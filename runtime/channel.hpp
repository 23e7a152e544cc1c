#pragma once
// Channel<T>: an actor's typed mailbox. Many senders, one receiver, bounded: a
// sender to a full channel waits (back-pressure), the receiver waits on empty.
// Waiters are resumed through the ready queue, never inline, so a send never runs
// the receiver inside the sender's stack.
#include <coroutine>
#include <cstddef>
#include <deque>
#include <memory>
#include <optional>
#include <stop_token>

#include "runtime/reactor.hpp"
#include "runtime/result.hpp"

namespace runtime {

template <class T>
class Channel {
 public:
  explicit Channel(std::size_t capacity = 64) : capacity_(capacity ? capacity : 1) {}
  Channel(const Channel&) = delete;
  Channel& operator=(const Channel&) = delete;
  ~Channel() { close(); }

  // Non-blocking send for callers that cannot wait; false when full or closed.
  bool try_send(T value) {
    if (closed_ || size() >= capacity_) return false;
    push(std::move(value));
    return true;
  }

  class SendAwaiter {
   public:
    SendAwaiter(Channel& ch, T v) : ch_(ch), value_(std::move(v)) {}
    SendAwaiter(const SendAwaiter&) = delete;
    ~SendAwaiter() { ch_.forget_sender(this); }
    bool await_ready() { return ch_.closed_ || ch_.size() < ch_.capacity_; }
    void await_suspend(std::coroutine_handle<> h) {
      waiter_ = h;
      ch_.senders().push_back(this);
    }
    // false: the channel was closed and the value dropped.
    bool await_resume() {
      if (delivered_) return true;
      if (ch_.closed_) return false;
      ch_.push(std::move(value_));
      return true;
    }
   private:
    friend class Channel;
    Channel& ch_;
    T value_;
    std::coroutine_handle<> waiter_;
    bool delivered_ = false;
  };
  [[nodiscard]] SendAwaiter send(T value) { return SendAwaiter(*this, std::move(value)); }

  // Resolves to the next item; EPIPE once closed and drained; ECANCELED on stop.
  class RecvAwaiter {
   public:
    RecvAwaiter(Channel& ch, std::stop_token st) : ch_(ch), stop_(std::move(st)) {}
    RecvAwaiter(const RecvAwaiter&) = delete;
    ~RecvAwaiter() {
      if (ch_.receiver_ == this) ch_.receiver_ = nullptr;
    }
    bool await_ready() const { return ch_.size() > 0 || ch_.closed_ || stop_.stop_requested(); }
    void await_suspend(std::coroutine_handle<> h) {
      waiter_ = h;
      ch_.receiver_ = this;
      if (stop_.stop_possible()) on_stop_.emplace(stop_, Wake{this});
    }
    Result<T> await_resume() {
      on_stop_.reset();
      if (ch_.size() > 0) {
        T v = ch_.take_front();
        ch_.wake_one_sender();
        return Result<T>(std::move(v));
      }
      return Result<T>::failure(ch_.closed_ ? EPIPE : ECANCELED);
    }
   private:
    friend class Channel;
    struct Wake {
      RecvAwaiter* self;
      void operator()() const noexcept { self->ch_.wake_receiver(); }
    };
    Channel& ch_;
    std::stop_token stop_;
    std::coroutine_handle<> waiter_;
    std::optional<std::stop_callback<Wake>> on_stop_;
  };
  [[nodiscard]] RecvAwaiter recv(std::stop_token st = {}) { return RecvAwaiter(*this, std::move(st)); }

  // Senders waiting get false; the receiver drains what is queued, then EPIPE.
  void close() {
    if (closed_) return;
    closed_ = true;
    if (senders_) {
      for (SendAwaiter* s : *senders_) reactor().schedule(s->waiter_);
      senders_.reset();
    }
    wake_receiver();
  }
  bool closed() const noexcept { return closed_; }
  std::size_t size() const noexcept { return items_ ? items_->size() : 0; }

 private:
  // Both queues exist only while they hold something: libstdc++'s deque allocates ~600
  // bytes as soon as it is constructed, and most channels (a mailbox per service, two per
  // HTTP connection) are empty nearly all their life.
  std::deque<T>& items() {
    if (!items_) items_ = std::make_unique<std::deque<T>>();
    return *items_;
  }
  std::deque<SendAwaiter*>& senders() {
    if (!senders_) senders_ = std::make_unique<std::deque<SendAwaiter*>>();
    return *senders_;
  }
  T take_front() {
    T v = std::move(items_->front());
    items_->pop_front();
    if (items_->empty()) items_.reset();
    return v;
  }
  void push(T value) {
    items().push_back(std::move(value));
    wake_receiver();
  }
  void wake_receiver() {
    if (receiver_) {
      reactor().schedule(receiver_->waiter_);
      receiver_ = nullptr;
    }
  }
  // A freed slot goes to the longest-waiting sender: its value is handed over now,
  // so a sender arriving before it resumes cannot take the slot (FIFO, and the
  // bound holds exactly).
  void wake_one_sender() {
    if (!senders_ || size() >= capacity_) return;
    SendAwaiter* s = senders_->front();
    senders_->pop_front();
    if (senders_->empty()) senders_.reset();
    items().push_back(std::move(s->value_));
    s->delivered_ = true;
    reactor().schedule(s->waiter_);
  }
  void forget_sender(SendAwaiter* s) {
    if (!senders_) return;
    for (auto it = senders_->begin(); it != senders_->end(); ++it)
      if (*it == s) {
        senders_->erase(it);
        if (senders_->empty()) senders_.reset();
        return;
      }
  }

  std::size_t capacity_;
  std::unique_ptr<std::deque<T>> items_;
  std::unique_ptr<std::deque<SendAwaiter*>> senders_;
  RecvAwaiter* receiver_ = nullptr;
  bool closed_ = false;
};

}  // namespace runtime
