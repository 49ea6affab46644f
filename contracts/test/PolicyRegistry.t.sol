// SPDX-License-Identifier: UNLICENSED
pragma solidity 0.8.30;

import {Vm} from "./lib/MiniTest.sol";
import {OwnershipTests} from "./lib/OwnershipTests.sol";
import {PolicyRegistry} from "../src/PolicyRegistry.sol";
import {Owned2Step} from "../src/Owned2Step.sol";

contract PolicyRegistryTest is OwnershipTests {
    PolicyRegistry internal registry;

    bytes32 internal constant BUNDLE_1 = keccak256("policy bundle 1");
    bytes32 internal constant BUNDLE_2 = keccak256("policy bundle 2");
    uint64 internal constant NOW = 1_800_000_000;

    function setUp() public {
        vm.warp(NOW);
        registry = new PolicyRegistry(owner);
    }

    function deploy(address initialOwner) internal override returns (Owned2Step) {
        return new PolicyRegistry(initialOwner);
    }

    function owned() internal view override returns (Owned2Step) {
        return registry;
    }

    function assertLatest(uint64 version, bytes32 bundleHash, string memory what) internal view {
        (uint64 v, bytes32 h,) = registry.latest();
        assertEq(v, version, string.concat(what, ": version"));
        assertEq(h, bundleHash, string.concat(what, ": bundleHash"));
    }

    function test_RegulatorIsTheOwner() public view {
        assertEq(registry.regulator(), owner, "regulator");
    }

    function test_NothingPublishedAtFirst() public view {
        (uint64 version, bytes32 bundleHash, uint64 publishedAt) = registry.latest();
        assertEq(version, 0, "version");
        assertEq(bundleHash, bytes32(0), "bundleHash");
        assertEq(publishedAt, 0, "publishedAt");
    }

    // --- access and input --------------------------------------------------

    function test_PublishOnlyByRegulator() public {
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(Owned2Step.NotOwner.selector, stranger));
        registry.publish(1, BUNDLE_1);
        assertLatest(0, bytes32(0), "latest");
    }

    function test_PublishRejectsZeroBundleHash() public {
        vm.prank(owner);
        vm.expectRevert(abi.encodeWithSelector(PolicyRegistry.ZeroBundleHash.selector));
        registry.publish(1, bytes32(0));
    }

    function test_PublishRejectsVersionZero() public {
        vm.prank(owner);
        vm.expectRevert(abi.encodeWithSelector(PolicyRegistry.VersionNotIncreasing.selector, uint64(0), uint64(0)));
        registry.publish(0, BUNDLE_1);
    }

    function test_NewRegulatorPublishes() public {
        vm.prank(owner);
        registry.transferOwnership(successor);
        vm.prank(successor);
        registry.acceptOwnership();

        vm.prank(owner);
        vm.expectRevert(abi.encodeWithSelector(Owned2Step.NotOwner.selector, owner));
        registry.publish(1, BUNDLE_1);
        vm.prank(successor);
        registry.publish(1, BUNDLE_1);
        assertLatest(1, BUNDLE_1, "latest");
    }

    // --- effects and monotonicity ------------------------------------------

    function test_PublishRecordsTheVersion() public {
        vm.prank(owner);
        registry.publish(1, BUNDLE_1);
        (uint64 version, bytes32 bundleHash, uint64 publishedAt) = registry.latest();
        assertEq(version, 1, "version");
        assertEq(bundleHash, BUNDLE_1, "bundleHash");
        assertEq(publishedAt, NOW, "publishedAt");
    }

    function test_PublishEmitsPolicyPublished() public {
        vm.expectEmit(address(registry));
        emit PolicyRegistry.PolicyPublished(3, BUNDLE_1);
        vm.prank(owner);
        registry.publish(3, BUNDLE_1);
    }

    /// @dev The raw log, as a data centre decodes it.
    function test_PolicyPublishedLogLayout() public {
        vm.recordLogs();
        vm.prank(owner);
        registry.publish(3, BUNDLE_1);
        Vm.Log[] memory logs = vm.getRecordedLogs();
        assertEq(logs.length, 1, "number of logs");
        assertEq(logs[0].emitter, address(registry), "emitter");
        assertEq(logs[0].topics.length, 2, "number of topics");
        assertEq(logs[0].topics[0], keccak256("PolicyPublished(uint64,bytes32)"), "topic0");
        assertEq(logs[0].topics[1], bytes32(uint256(3)), "version");
        assertEq(logs[0].data, abi.encode(BUNDLE_1), "data");
    }

    function test_VersionsMustIncrease() public {
        vm.startPrank(owner);
        registry.publish(2, BUNDLE_1);
        vm.expectRevert(abi.encodeWithSelector(PolicyRegistry.VersionNotIncreasing.selector, uint64(2), uint64(2)));
        registry.publish(2, BUNDLE_2);
        vm.expectRevert(abi.encodeWithSelector(PolicyRegistry.VersionNotIncreasing.selector, uint64(2), uint64(1)));
        registry.publish(1, BUNDLE_2);
        vm.stopPrank();
        assertLatest(2, BUNDLE_1, "latest");
    }

    function test_EarlierVersionsStayReadable() public {
        vm.prank(owner);
        registry.publish(1, BUNDLE_1);
        vm.warp(NOW + 1 days);
        vm.prank(owner);
        registry.publish(5, BUNDLE_2);

        assertLatest(5, BUNDLE_2, "latest");
        (bytes32 hash1, uint64 at1) = registry.publication(1);
        assertEq(hash1, BUNDLE_1, "version 1 hash");
        assertEq(at1, NOW, "version 1 time");
        (bytes32 hash5, uint64 at5) = registry.publication(5);
        assertEq(hash5, BUNDLE_2, "version 5 hash");
        assertEq(at5, NOW + 1 days, "version 5 time");
        (bytes32 hash3, uint64 at3) = registry.publication(3);
        assertEq(hash3, bytes32(0), "skipped version hash");
        assertEq(at3, 0, "skipped version time");
    }

    function testFuzz_SecondVersionLandsOnlyIfLarger(uint64 first, uint64 second) public {
        vm.assume(first > 0);
        vm.prank(owner);
        registry.publish(first, BUNDLE_1);
        if (second <= first) {
            vm.expectRevert(abi.encodeWithSelector(PolicyRegistry.VersionNotIncreasing.selector, first, second));
        }
        vm.prank(owner);
        registry.publish(second, BUNDLE_2);
        assertLatest(second > first ? second : first, second > first ? BUNDLE_2 : BUNDLE_1, "latest");
    }
}
