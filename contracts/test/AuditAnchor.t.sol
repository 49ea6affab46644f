// SPDX-License-Identifier: UNLICENSED
pragma solidity 0.8.30;

import {Vm} from "./lib/MiniTest.sol";
import {OwnershipTests} from "./lib/OwnershipTests.sol";
import {AuditAnchor} from "../src/AuditAnchor.sol";
import {Owned2Step} from "../src/Owned2Step.sol";

contract AuditAnchorTest is OwnershipTests {
    AuditAnchor internal anchorContract;
    address internal operator = makeAccount("operator");
    address internal otherOperator = makeAccount("otherOperator");

    bytes32 internal constant LOG = keccak256("medvault test log 1");
    bytes32 internal constant OTHER_LOG = keccak256("medvault test log 2");
    bytes32 internal constant ROOT_A = keccak256("root a");
    bytes32 internal constant ROOT_B = keccak256("root b");

    function setUp() public {
        anchorContract = new AuditAnchor(owner);
        vm.prank(owner);
        anchorContract.addOperator(operator);
    }

    function deploy(address initialOwner) internal override returns (Owned2Step) {
        return new AuditAnchor(initialOwner);
    }

    function owned() internal view override returns (Owned2Step) {
        return anchorContract;
    }

    function assertLatest(bytes32 logId, uint64 treeSize, bytes32 rootHash, string memory what) internal view {
        (uint64 size, bytes32 root,,) = anchorContract.latest(logId);
        assertEq(size, treeSize, string.concat(what, ": treeSize"));
        assertEq(root, rootHash, string.concat(what, ": rootHash"));
    }

    // --- operators ---------------------------------------------------------

    function test_AdminIsTheOwner() public view {
        assertEq(anchorContract.admin(), owner, "admin");
    }

    function test_AddOperator() public {
        assertFalse(anchorContract.isOperator(otherOperator), "isOperator before");
        vm.expectEmit(address(anchorContract));
        emit AuditAnchor.OperatorAdded(otherOperator);
        vm.prank(owner);
        anchorContract.addOperator(otherOperator);
        assertTrue(anchorContract.isOperator(otherOperator), "isOperator after");
    }

    function test_AddOperatorOnlyByAdmin() public {
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(Owned2Step.NotOwner.selector, operator));
        anchorContract.addOperator(otherOperator);
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(Owned2Step.NotOwner.selector, stranger));
        anchorContract.addOperator(stranger);
        assertFalse(anchorContract.isOperator(otherOperator), "isOperator");
        assertFalse(anchorContract.isOperator(stranger), "isOperator(stranger)");
    }

    function test_AddOperatorRejectsZeroAddress() public {
        vm.prank(owner);
        vm.expectRevert(abi.encodeWithSelector(Owned2Step.ZeroAddress.selector));
        anchorContract.addOperator(address(0));
    }

    function test_AddOperatorRejectsExistingOperator() public {
        vm.prank(owner);
        vm.expectRevert(abi.encodeWithSelector(AuditAnchor.AlreadyOperator.selector, operator));
        anchorContract.addOperator(operator);
    }

    function test_RemoveOperator() public {
        vm.expectEmit(address(anchorContract));
        emit AuditAnchor.OperatorRemoved(operator);
        vm.prank(owner);
        anchorContract.removeOperator(operator);
        assertFalse(anchorContract.isOperator(operator), "isOperator");

        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(AuditAnchor.NotOperator.selector, operator));
        anchorContract.anchor(LOG, 1, ROOT_A);
    }

    function test_RemoveOperatorOnlyByAdmin() public {
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(Owned2Step.NotOwner.selector, operator));
        anchorContract.removeOperator(operator);
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(Owned2Step.NotOwner.selector, stranger));
        anchorContract.removeOperator(operator);
        assertTrue(anchorContract.isOperator(operator), "isOperator");
    }

    function test_RemoveOperatorRejectsUnknownAccount() public {
        vm.prank(owner);
        vm.expectRevert(abi.encodeWithSelector(AuditAnchor.UnknownOperator.selector, stranger));
        anchorContract.removeOperator(stranger);
    }

    function test_RemovedOperatorKeepsItsAnchors() public {
        vm.prank(operator);
        anchorContract.anchor(LOG, 5, ROOT_A);
        vm.prank(owner);
        anchorContract.removeOperator(operator);
        assertLatest(LOG, 5, ROOT_A, "latest");
    }

    function test_NewAdminManagesOperators() public {
        vm.prank(owner);
        anchorContract.transferOwnership(successor);
        vm.prank(successor);
        anchorContract.acceptOwnership();

        vm.prank(owner);
        vm.expectRevert(abi.encodeWithSelector(Owned2Step.NotOwner.selector, owner));
        anchorContract.addOperator(otherOperator);
        vm.prank(owner);
        vm.expectRevert(abi.encodeWithSelector(Owned2Step.NotOwner.selector, owner));
        anchorContract.removeOperator(operator);

        vm.prank(successor);
        anchorContract.addOperator(otherOperator);
        vm.prank(successor);
        anchorContract.removeOperator(operator);
        assertTrue(anchorContract.isOperator(otherOperator), "new operator");
        assertFalse(anchorContract.isOperator(operator), "removed operator");
    }

    // --- anchor: access and input ------------------------------------------

    function test_AnchorOnlyByOperator() public {
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(AuditAnchor.NotOperator.selector, stranger));
        anchorContract.anchor(LOG, 1, ROOT_A);
        // The admin is not an operator unless it adds itself.
        vm.prank(owner);
        vm.expectRevert(abi.encodeWithSelector(AuditAnchor.NotOperator.selector, owner));
        anchorContract.anchor(LOG, 1, ROOT_A);
        assertLatest(LOG, 0, bytes32(0), "latest");
    }

    function test_AnchorRejectsZeroLogId() public {
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(AuditAnchor.ZeroLogId.selector));
        anchorContract.anchor(bytes32(0), 1, ROOT_A);
    }

    function test_AnchorRejectsZeroRootHash() public {
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(AuditAnchor.ZeroRootHash.selector));
        anchorContract.anchor(LOG, 1, bytes32(0));
    }

    function test_AnchorRejectsTreeSizeZero() public {
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(AuditAnchor.TreeSizeNotIncreasing.selector, LOG, uint64(0), uint64(0)));
        anchorContract.anchor(LOG, 0, ROOT_A);
    }

    // --- anchor: effects ---------------------------------------------------

    function test_AnchorRecordsTheCheckpoint() public {
        vm.warp(1_800_000_000);
        vm.roll(4242);
        vm.prank(operator);
        anchorContract.anchor(LOG, 7, ROOT_A);
        (uint64 treeSize, bytes32 rootHash, uint64 timestamp, uint64 blockNumber) = anchorContract.latest(LOG);
        assertEq(treeSize, 7, "treeSize");
        assertEq(rootHash, ROOT_A, "rootHash");
        assertEq(timestamp, 1_800_000_000, "timestamp");
        assertEq(blockNumber, 4242, "blockNumber");
    }

    function test_LatestOfUnknownLogIsZero() public view {
        (uint64 treeSize, bytes32 rootHash, uint64 timestamp, uint64 blockNumber) = anchorContract.latest(OTHER_LOG);
        assertEq(treeSize, 0, "treeSize");
        assertEq(rootHash, bytes32(0), "rootHash");
        assertEq(timestamp, 0, "timestamp");
        assertEq(blockNumber, 0, "blockNumber");
    }

    function test_AnchorEmitsAnchored() public {
        vm.expectEmit(address(anchorContract));
        emit AuditAnchor.Anchored(LOG, 7, ROOT_A, operator);
        vm.prank(operator);
        anchorContract.anchor(LOG, 7, ROOT_A);
    }

    /// @dev The raw log, as the signer decodes it from a receipt.
    function test_AnchoredLogLayout() public {
        vm.recordLogs();
        vm.prank(operator);
        anchorContract.anchor(LOG, 7, ROOT_A);
        Vm.Log[] memory logs = vm.getRecordedLogs();
        assertEq(logs.length, 1, "number of logs");
        assertEq(logs[0].emitter, address(anchorContract), "emitter");
        assertEq(logs[0].topics.length, 3, "number of topics");
        assertEq(logs[0].topics[0], keccak256("Anchored(bytes32,uint64,bytes32,address)"), "topic0");
        assertEq(logs[0].topics[1], LOG, "logId");
        assertEq(logs[0].topics[2], bytes32(uint256(uint160(operator))), "operator");
        assertEq(logs[0].data, abi.encode(uint256(7), ROOT_A), "data (treeSize, rootHash)");
    }

    // --- anchor: monotonicity ----------------------------------------------

    function test_TreeSizeMustIncrease() public {
        vm.startPrank(operator);
        anchorContract.anchor(LOG, 10, ROOT_A);
        vm.expectRevert(abi.encodeWithSelector(AuditAnchor.TreeSizeNotIncreasing.selector, LOG, uint64(10), uint64(9)));
        anchorContract.anchor(LOG, 9, ROOT_B);
        anchorContract.anchor(LOG, 11, ROOT_B);
        vm.stopPrank();
        assertLatest(LOG, 11, ROOT_B, "latest");
    }

    function test_RetriedAnchorIsRejectedHarmlessly() public {
        vm.prank(operator);
        anchorContract.anchor(LOG, 10, ROOT_A);
        (,, uint64 timestamp, uint64 blockNumber) = anchorContract.latest(LOG);

        vm.warp(block.timestamp + 60);
        vm.roll(block.number + 5);
        vm.recordLogs();
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(AuditAnchor.AlreadyAnchored.selector, LOG, uint64(10), ROOT_A));
        anchorContract.anchor(LOG, 10, ROOT_A);
        assertEq(vm.getRecordedLogs().length, 0, "logs of the retry");

        (uint64 treeSize, bytes32 rootHash, uint64 timestamp2, uint64 blockNumber2) = anchorContract.latest(LOG);
        assertEq(treeSize, 10, "treeSize");
        assertEq(rootHash, ROOT_A, "rootHash");
        assertEq(timestamp2, timestamp, "timestamp unchanged");
        assertEq(blockNumber2, blockNumber, "blockNumber unchanged");
    }

    function test_SameSizeWithAnotherRootIsRejected() public {
        vm.prank(operator);
        anchorContract.anchor(LOG, 10, ROOT_A);
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(AuditAnchor.TreeSizeNotIncreasing.selector, LOG, uint64(10), uint64(10)));
        anchorContract.anchor(LOG, 10, ROOT_B);
        assertLatest(LOG, 10, ROOT_A, "latest");
    }

    function test_OlderSizeWithTheLatestRootIsRejected() public {
        vm.prank(operator);
        anchorContract.anchor(LOG, 10, ROOT_A);
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(AuditAnchor.TreeSizeNotIncreasing.selector, LOG, uint64(10), uint64(3)));
        anchorContract.anchor(LOG, 3, ROOT_A);
    }

    function test_MonotonicityIsPerLog() public {
        vm.startPrank(operator);
        anchorContract.anchor(LOG, 100, ROOT_A);
        anchorContract.anchor(OTHER_LOG, 1, ROOT_B);
        vm.stopPrank();
        assertLatest(LOG, 100, ROOT_A, "log 1");
        assertLatest(OTHER_LOG, 1, ROOT_B, "log 2");
    }

    function test_MonotonicityIsSharedByOperators() public {
        vm.prank(owner);
        anchorContract.addOperator(otherOperator);
        vm.prank(operator);
        anchorContract.anchor(LOG, 10, ROOT_A);
        vm.prank(otherOperator);
        vm.expectRevert(abi.encodeWithSelector(AuditAnchor.TreeSizeNotIncreasing.selector, LOG, uint64(10), uint64(8)));
        anchorContract.anchor(LOG, 8, ROOT_B);
        vm.prank(otherOperator);
        anchorContract.anchor(LOG, 12, ROOT_B);
        assertLatest(LOG, 12, ROOT_B, "latest");
    }

    function testFuzz_SecondAnchorLandsOnlyIfLarger(uint64 first, uint64 second) public {
        vm.assume(first > 0);
        vm.prank(operator);
        anchorContract.anchor(LOG, first, ROOT_A);
        if (second <= first) {
            vm.expectRevert(abi.encodeWithSelector(AuditAnchor.TreeSizeNotIncreasing.selector, LOG, first, second));
        }
        vm.prank(operator);
        anchorContract.anchor(LOG, second, ROOT_B);
        assertLatest(LOG, second > first ? second : first, second > first ? ROOT_B : ROOT_A, "latest");
    }
}
