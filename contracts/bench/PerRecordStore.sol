// SPDX-License-Identifier: UNLICENSED
pragma solidity 0.8.30;

/// @title PerRecordStore
/// @notice Benchmark baseline only (bench/anchor-gas), never deployed by
///         medvault: per-record anchoring as the seed papers' contracts do
///         it, one transaction and one storage write per record.
contract PerRecordStore {
    /// @notice `hash` was stored for record `id`.
    event Stored(bytes32 indexed id, bytes32 hash);

    mapping(bytes32 id => bytes32 hash) public records;

    /// @notice Stores the hash of one record.
    function store(bytes32 id, bytes32 hash) external {
        records[id] = hash;
        emit Stored(id, hash);
    }
}
