// The CIDs medvault computes are the ones an independent IPFS
// implementation computes for the same bytes: each object is added to a
// real js-ipfs node (tests/ipfs) and its answer compared with DagBuilder's
// root. A table of the expected CIDs is a second check that needs no node.
#include <curl/curl.h>

#include <cstdint>
#include <random>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "daemon/storage/cid.h"
#include "daemon/storage/unixfs.h"
#include "gmock/gmock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "tests/storage/ipfs_daemon.h"

namespace medvault::storage {
namespace {

using integration::IpfsDaemon;

constexpr size_t kMiB = 1 << 20;

struct Golden {
  const char* name;
  size_t size;
  size_t blocks;    // leaves, nodes and root
  const char* cid;  // as js-ipfs 0.66.1 (ipfs-core 0.18.1) gives it
};

// The edges of the layout: the empty file, a single raw leaf, exactly one
// chunk, one byte over (a root with two leaves), several chunks, and more
// than 174 chunks (a tree two levels deep whose last branch has one leaf).
constexpr Golden kGolden[] = {
    {"empty", 0, 1, "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"},
    {"one_byte", 1, 1, "bafkreignbkuykykhw3c3j7zlpx7olwravi4ckmez54nuuzfm5urtzgx6fe"},
    {"one_chunk", kChunkSize, 1, "bafkreibbbqopylqgwn2zaz6ctp6j2cwvtcppyuskjcg64ldcpeln2abu2m"},
    {"one_chunk_and_a_byte", kChunkSize + 1, 3,
     "bafybeibi2zw6f22hifzhturbeh3i5shhprdemp2z2d4p7p7dicnd7lrfgq"},
    {"one_mib", kMiB, 5, "bafybeiec34pgb3py3faogmcpamkh3tdtglvfgrc4b6dp76fnrk6yino76u"},
    {"forty_six_mib", 46 * kMiB, 187,
     "bafybeigubpxpzlxbr6fcxjhe35p6lg7sk3dmyvulmhukal6eqkswxso7ji"},
};

// Reproducible content: mt19937_64's sequence is fixed by the C++
// standard, so every platform makes the same bytes for a size.
std::string Content(size_t size) {
  std::mt19937_64 random(0x6d65647661756c74ULL ^ size);
  std::string out(size, '\0');
  for (size_t i = 0; i < size; i += 8) {
    uint64_t word = random();
    for (size_t j = 0; j < 8 && i + j < size; ++j) out[i + j] = static_cast<char>(word >> (8 * j));
  }
  return out;
}

class CountingSink final : public BlockSink {
 public:
  absl::Status PutBlock(const Cid&, absl::string_view) override {
    ++blocks;
    return absl::OkStatus();
  }
  size_t blocks = 0;
};

struct Local {
  std::string cid;
  size_t blocks = 0;
};

// DagBuilder's root, fed in uneven pieces so that chunk boundaries never
// line up with writes.
Local LocalCid(const std::string& content) {
  CountingSink sink;
  DagBuilder builder(sink);
  for (size_t at = 0; at < content.size();) {
    size_t n = std::min<size_t>(content.size() - at, 100'003);
    EXPECT_TRUE(builder.Write(absl::string_view(content).substr(at, n)).ok());
    at += n;
  }
  absl::StatusOr<Cid> root = builder.Finish();
  EXPECT_TRUE(root.ok()) << root.status();
  return {root.ok() ? root->ToString() : "", sink.blocks};
}

size_t Collect(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

// POST /api/v0/add with the query the task fixes; the Hash of the answer.
absl::StatusOr<std::string> NodeCid(const IpfsDaemon& node, const std::string& content) {
  std::unique_ptr<CURL, void (*)(CURL*)> curl(curl_easy_init(), curl_easy_cleanup);
  std::unique_ptr<curl_mime, void (*)(curl_mime*)> mime(curl_mime_init(curl.get()), curl_mime_free);
  curl_mimepart* part = curl_mime_addpart(mime.get());
  curl_mime_name(part, "file");
  curl_mime_filename(part, "golden");
  curl_mime_type(part, "application/octet-stream");  // js-ipfs requires one
  curl_mime_data(part, content.data(), content.size());
  const std::string url =
      node.api_url() + "/api/v0/add?cid-version=1&raw-leaves=true&cid-base=base32";
  std::string body;
  curl_easy_setopt(curl.get(), CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl.get(), CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl.get(), CURLOPT_TIMEOUT_MS, 120'000L);
  curl_easy_setopt(curl.get(), CURLOPT_MIMEPOST, mime.get());
  curl_easy_setopt(curl.get(), CURLOPT_WRITEFUNCTION, Collect);
  curl_easy_setopt(curl.get(), CURLOPT_WRITEDATA, &body);
  if (CURLcode rc = curl_easy_perform(curl.get()); rc != CURLE_OK) {
    return absl::UnavailableError(absl::StrCat("add: ", curl_easy_strerror(rc)));
  }
  long http = 0;
  curl_easy_getinfo(curl.get(), CURLINFO_RESPONSE_CODE, &http);
  if (http != 200) return absl::InternalError(absl::StrCat("add: HTTP ", http, ": ", body));
  // One JSON object per line; the file's is the last.
  std::string hash;
  for (absl::string_view line : absl::StrSplit(body, '\n', absl::SkipWhitespace())) {
    google::protobuf::Struct json;
    if (!google::protobuf::util::JsonStringToMessage(std::string(line), &json).ok()) {
      return absl::InternalError(absl::StrCat("add: not JSON: ", line));
    }
    auto it = json.fields().find("Hash");
    if (it != json.fields().end()) hash = it->second.string_value();
  }
  if (hash.empty()) return absl::InternalError(absl::StrCat("add: no Hash in ", body));
  return hash;
}

// DagBuilder gives every size the CID that js-ipfs gives it, with the
// number of blocks the layout implies. One node serves every size (ctest
// runs each TEST in a process of its own; a node takes seconds to start).
TEST(GoldenCidTest, DagBuilderMatchesJsIpfs) {
  absl::StatusOr<std::unique_ptr<IpfsDaemon>> node = IpfsDaemon::Start();
  ASSERT_TRUE(node.ok()) << node.status();
  for (const Golden& golden : kGolden) {
    SCOPED_TRACE(golden.name);
    const std::string content = Content(golden.size);
    absl::StatusOr<std::string> theirs = NodeCid(**node, content);
    ASSERT_TRUE(theirs.ok()) << theirs.status();
    Local ours = LocalCid(content);
    EXPECT_EQ(ours.cid, *theirs) << golden.size << " bytes";
    EXPECT_EQ(ours.blocks, golden.blocks) << golden.size << " bytes";
    std::printf("golden %-22s %9zu bytes  js-ipfs %s  medvault %s  blocks %zu\n", golden.name,
                golden.size, theirs->c_str(), ours.cid.c_str(), ours.blocks);
  }
}

// The recorded CIDs still hold, without a node: a change of layout or
// encoding shows here even on a machine without tests/ipfs installed.
TEST(GoldenCidTest, DagBuilderMatchesRecordedCids) {
  for (const Golden& golden : kGolden) {
    SCOPED_TRACE(golden.name);
    Local ours = LocalCid(Content(golden.size));
    EXPECT_EQ(ours.cid, golden.cid) << golden.size << " bytes";
    EXPECT_EQ(ours.blocks, golden.blocks) << golden.size << " bytes";
  }
}

}  // namespace
}  // namespace medvault::storage
