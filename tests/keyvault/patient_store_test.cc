// The patient store: generations, tombstones, and seeds really gone from
// the file after a shred.
#include "keyvault/patient_store.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace medvault::keyvault {
namespace {

class PatientStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/medvault-store-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    auto store = PatientStore::Open(dir_ + "/patient-keys.db");
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  static SecretData Seed(char fill) {
    return SecretData(std::string(PatientStore::kSeedSize, fill));
  }
  std::string FileBytes() {
    std::string all;
    for (const char* suffix : {"", "-wal", "-shm"}) {
      std::ifstream in(dir_ + "/patient-keys.db" + suffix, std::ios::binary);
      std::stringstream s;
      s << in.rdbuf();
      all += s.str();
    }
    return all;
  }

  std::string dir_;
  std::unique_ptr<PatientStore> store_;
};

// Generations count up per patient; Latest and Get find them.
TEST_F(PatientStoreTest, GenerationsCountUpPerPatient) {
  EXPECT_FALSE(store_->Latest("p1")->has_value());
  ASSERT_EQ(store_->Add("p1", 1, Seed('a'))->generation, 1u);
  ASSERT_EQ(store_->Add("p1", 2, Seed('b'))->generation, 2u);
  ASSERT_EQ(store_->Add("p2", 2, Seed('c'))->generation, 1u);
  auto latest = store_->Latest("p1");
  ASSERT_TRUE(latest.ok() && latest->has_value());
  EXPECT_EQ((*latest)->generation, 2u);
  EXPECT_EQ((*latest)->master_version, 2u);
  auto first = store_->Get("p1", 1);
  ASSERT_TRUE(first.ok());
  EXPECT_TRUE(first->seed.ConstantTimeEquals(Seed('a')));
  EXPECT_EQ(store_->Get("p1", 3).status().code(), absl::StatusCode::kNotFound);
}

// A shred destroys every generation, leaves a tombstone that refuses new
// keys, and leaves no copy of a seed in the database files.
TEST_F(PatientStoreTest, ShredDestroysSeedsEverywhere) {
  const std::string marker(PatientStore::kSeedSize, '\x5a');
  ASSERT_TRUE(store_->Add("p1", 1, SecretData(marker)).ok());
  ASSERT_TRUE(store_->Add("p1", 1, SecretData(marker)).ok());
  ASSERT_TRUE(store_->Add("p2", 1, Seed('b')).ok());
  ASSERT_NE(FileBytes().find(marker), std::string::npos) << "the seed should be on disk first";

  auto destroyed = store_->Shred("p1");
  ASSERT_TRUE(destroyed.ok()) << destroyed.status();
  EXPECT_EQ(*destroyed, 2u);
  EXPECT_EQ(FileBytes().find(marker), std::string::npos) << "a shredded seed is still on disk";

  EXPECT_EQ(store_->Latest("p1").status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(store_->Get("p1", 1).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(store_->Add("p1", 1, Seed('c')).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(store_->Get("p2", 1).ok());
  auto counts = store_->Count();
  ASSERT_TRUE(counts.ok());
  EXPECT_EQ(counts->patients, 1u);
  EXPECT_EQ(counts->shredded, 1u);
  EXPECT_EQ(*store_->Shred("p1"), 0u);  // idempotent
}

// What was added survives closing and reopening the store.
TEST_F(PatientStoreTest, SurvivesReopen) {
  ASSERT_TRUE(store_->Add("p1", 3, Seed('q')).ok());
  store_.reset();
  auto store = PatientStore::Open(dir_ + "/patient-keys.db");
  ASSERT_TRUE(store.ok()) << store.status();
  auto g = (*store)->Get("p1", 1);
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(g->master_version, 3u);
}

}  // namespace
}  // namespace medvault::keyvault
