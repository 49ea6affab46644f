// SPDX-License-Identifier: UNLICENSED
pragma solidity 0.8.30;

import {Owned2Step} from "./Owned2Step.sol";

/// @title PolicyRegistry
/// @notice The regulator's published policy bundles: each version number
///         with the hash of its signed bundle. Versions strictly increase, so
///         a data centre that sees version N knows every earlier one and can
///         refuse an older bundle.
/// @dev No personal data goes on chain: only version numbers and bundle
///      hashes. The bundles themselves are distributed off chain.
///
///      The owner (see `Owned2Step`) is the regulator.
contract PolicyRegistry is Owned2Step {
    /// @notice `version` is not above the latest published version.
    error VersionNotIncreasing(uint64 latestVersion, uint64 version);
    /// @notice The bundle hash is zero.
    error ZeroBundleHash();

    /// @notice The regulator published bundle `bundleHash` as `version`.
    event PolicyPublished(uint64 indexed version, bytes32 bundleHash);

    /// @dev Two storage slots per version.
    struct Publication {
        bytes32 bundleHash;
        uint64 publishedAt;
    }

    uint64 private _latestVersion;
    mapping(uint64 version => Publication) private _publications;

    /// @param regulator_ The first regulator (owner); may differ from the deployer.
    constructor(address regulator_) Owned2Step(regulator_) {}

    /// @notice The regulator, i.e. the owner.
    function regulator() external view returns (address) {
        return owner();
    }

    /// @notice Publishes `bundleHash` as policy `version`.
    /// @dev Only the regulator. `version` must be above the latest one (so
    ///      above zero for the first); versions may skip numbers. Reverts
    ///      with `VersionNotIncreasing` or `ZeroBundleHash`.
    function publish(uint64 version, bytes32 bundleHash) external onlyOwner {
        uint64 latestVersion = _latestVersion;
        if (version <= latestVersion) revert VersionNotIncreasing(latestVersion, version);
        if (bundleHash == bytes32(0)) revert ZeroBundleHash();
        _latestVersion = version;
        _publications[version] = Publication({bundleHash: bundleHash, publishedAt: uint64(block.timestamp)});
        emit PolicyPublished(version, bundleHash);
    }

    /// @notice The latest published version (all zero before the first).
    /// @return version Version number.
    /// @return bundleHash Hash of its bundle.
    /// @return publishedAt Block timestamp of its publication.
    function latest() external view returns (uint64 version, bytes32 bundleHash, uint64 publishedAt) {
        version = _latestVersion;
        Publication storage p = _publications[version];
        return (version, p.bundleHash, p.publishedAt);
    }

    /// @notice A published version (zero hash and time if `version` was never published).
    /// @return bundleHash Hash of its bundle.
    /// @return publishedAt Block timestamp of its publication.
    function publication(uint64 version) external view returns (bytes32 bundleHash, uint64 publishedAt) {
        Publication storage p = _publications[version];
        return (p.bundleHash, p.publishedAt);
    }
}
